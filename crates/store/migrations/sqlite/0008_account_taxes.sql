-- An account's own tax profile (issue 13): JSON of billing::TaxProfile that replaces its
-- tariff's taxes on its calls (an empty list: tax-exempt); NULL uses the tariff's. Identical
-- on both backends; keep in step with the other directory's 0008_account_taxes.sql.
ALTER TABLE accounts ADD COLUMN tax_profile_json TEXT;
