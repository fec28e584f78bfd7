-- Gift cards (issue 22): a voucher batch with a design name is a batch of gift cards (sold in
-- shops, `talktime vouchers generate --design`); a customer may also buy one from their
-- balance in the portal (bought_by_account_id), debited in the transaction that makes it.
-- Either way it is a voucher: anyone holding the code redeems it, once. Identical on both
-- backends; keep in step with the other directory's 0026_gift_cards.sql.
ALTER TABLE voucher_batches ADD COLUMN design TEXT;
ALTER TABLE voucher_batches ADD COLUMN bought_by_account_id BIGINT REFERENCES accounts (id);
