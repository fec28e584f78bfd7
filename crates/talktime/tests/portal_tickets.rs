//! A trouble ticket's round trip (issue 22) through the running switch, in a real browser, with
//! a real SMTP server (aiosmtpd): a signed-up customer opens a billing ticket in the portal;
//! staff find it on the console's billing queue, save an answer and send it; the customer gets
//! the reply by mail (the ticket's number and subject in the mail's subject, the saved answer's
//! text in its body, once), reads it in the portal and answers, which reopens the ticket; a
//! reseller's user opens its own ticket and sees no other; another customer's ticket is "Not
//! found" in the portal.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::calls::start;
use common::free_port;
use common::mail::{MailServer, mails, wait_for_mail};
use common::prepaid::{self, ConfigFile};

const PASSWORD: &str = "correct horse battery";
const ANSWER: &str = "We refunded the dropped call; it shows as an adjustment on your account.";

fn sign_up(browser: &Browser, portal: &str, email: &str) {
    browser.go(&format!("{portal}/signup"));
    browser.type_into("#name", "Ana Lima");
    browser.type_into("#email", email);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_customer_opens_a_ticket_staff_answer_it_and_the_customer_gets_the_mail() {
    let dir = prepaid::data_dir("portal-tickets");
    let maildir = dir.join("maildir");
    let smtp_port = free_port();
    let _mail = MailServer::start(smtp_port, &maildir);
    common::cli(&dir, &["resellers", "add", "shop"]);
    let switch = start(
        &dir,
        ConfigFile::new().raw(&format!(
            "[portal]\nsignup = true\nsignup_reseller = \"shop\"\n\n[notifications]\nsmtp_url = \
             \"smtp://127.0.0.1:{smtp_port}\"\nfrom = \"Help <help@talktime.test>\"\n\
             poll_ms = 200\n"
        )),
    );
    let portal = format!("http://{}/portal", switch.admin);
    let site = format!("http://{}", switch.admin);
    let console = format!("{site}/console");
    let admin_password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    common::add_user(
        &dir,
        "shopkeeper",
        "reseller",
        &["--reseller", "shop"],
        "shop-password-1",
    );

    // Another customer's ticket first: Ana must not reach it.
    let other = Browser::start();
    sign_up(&other, &portal, "bo@example.com");
    other.type_into("#ticket-subject", "Bo's private matter");
    other.type_into("#ticket-body", "Only Bo may read this.");
    other.click("#open-ticket");
    other.until_page_says("Only Bo may read this.");
    let bos_ticket = other.url();
    drop(other);

    // The customer opens a billing ticket.
    let browser = Browser::start();
    sign_up(&browser, &portal, "ana@example.com");
    browser.go(&bos_ticket);
    browser.until_page_says("Not found");
    browser.go(&portal);
    browser.find("#ticket-queue");
    browser.click("#ticket-queue option[value=billing]");
    browser.type_into("#ticket-subject", "Charged for a dropped call");
    browser.type_into(
        "#ticket-body",
        "My call to Lima dropped after 10 s <and> I paid a minute.",
    );
    browser.click("#open-ticket");
    browser.until_page_says("I paid a minute.");
    assert!(browser.source().contains("&lt;and&gt;"), "escaped");
    assert_eq!(browser.text("#ticket-state"), "open");
    let ticket_url = browser.url();
    let ticket_id = ticket_url.rsplit('/').next().unwrap().to_owned();

    // She is the shop's customer: the portal wears the shop's name (white label).
    assert_eq!(browser.text("#brand"), "shop");

    // Staff: the billing queue holds it; a saved answer; the reply with it.
    let staff = Browser::start();
    staff.log_in(&site, "admin", admin_password.trim());
    staff.go(&format!("{console}/saved-answers"));
    staff.type_into("#answer-title", "Dropped call refunded");
    staff.type_into("#answer-body", ANSWER);
    staff.click("#save-answer");
    staff.until_page_says("Dropped call refunded");
    staff.go(&format!("{console}/tickets?queue=billing&state=open"));
    let listed = staff.text("#tickets");
    assert!(listed.contains("Charged for a dropped call"), "{listed}");
    assert!(
        !listed.contains("Bo's private matter"),
        "support queue: {listed}"
    );
    staff.go(&format!("{console}/tickets/{ticket_id}"));
    staff.click("#saved-answer option:nth-child(2)");
    staff.click("#send-reply");
    staff.until_page_says(ANSWER);
    assert_eq!(staff.text("#ticket-state"), "answered");

    // The mail: once, to her, with the ticket in the subject and the answer in the body.
    let subject = format!("Re: [#{ticket_id}] Charged for a dropped call");
    let all = wait_for_mail(&maildir, &subject, Duration::from_secs(20));
    let replies: Vec<&String> = all.iter().filter(|mail| mail.contains(&subject)).collect();
    assert_eq!(replies.len(), 1, "{all:?}");
    assert!(replies[0].contains("To: ana@example.com"), "{}", replies[0]);
    assert!(
        replies[0].contains("We refunded the dropped call"),
        "{}",
        replies[0]
    );

    // She reads it in the portal and answers: the ticket is open again for staff.
    browser.go(&ticket_url);
    browser.until_page_says(ANSWER);
    browser.type_into("#reply", "Thank you, I see it.");
    browser.click("#send-reply");
    browser.until_page_says("Thank you, I see it.");
    assert_eq!(browser.text("#ticket-state"), "open");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        mails(&maildir).len(),
        all.len(),
        "her own answer mails nobody"
    );

    // Out and in again with her e-mail address (any case); a speed dial, stored and removed.
    browser.click("#logout");
    browser.find("#login");
    browser.type_into("#login", "Ana@Example.COM");
    browser.type_into("#password", PASSWORD);
    browser.click("#submit");
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap();
    browser.type_into("#speed-key", "2");
    browser.type_into("#speed-number", "00442071234567");
    browser.click("#store-speed-dial");
    browser.until_page_says("Key 2 is stored.");
    assert!(browser.text("#speed-dials").contains("442071234567"));
    browser.click("#speed-dials button");
    browser.until_page_says("The key is free again.");
    assert!(browser.all("tr.speed-dial").is_empty());

    // The shop's user handles its own customers' tickets: it sees Ana's and Bo's, answers
    // Bo's (mailed to Bo), and opens its own ticket to staff.
    let shop = Browser::start();
    shop.log_in(&site, "shopkeeper", "shop-password-1");
    shop.go(&format!("{console}/tickets"));
    assert_eq!(shop.text("#brand"), "shop");
    let listed = shop.text("#tickets");
    assert!(listed.contains("Charged for a dropped call"), "{listed}");
    assert!(listed.contains("Bo's private matter"), "{listed}");
    let bos_id = bos_ticket.rsplit('/').next().unwrap().to_owned();
    shop.go(&format!("{console}/tickets/{bos_id}"));
    shop.until_page_says("Only Bo may read this.");
    assert!(
        !shop.source().contains("saved-answer"),
        "saved answers are staff's"
    );
    shop.type_into("#reply", "Bo, your shop will call you back today.");
    shop.click("#send-reply");
    shop.until_page_says("your shop will call you back today");
    assert_eq!(shop.text("#ticket-state"), "answered");
    let bos_subject = format!("Re: [#{bos_id}] Bo's private matter");
    let all = wait_for_mail(&maildir, &bos_subject, Duration::from_secs(20));
    let to_bo: Vec<&String> = all
        .iter()
        .filter(|mail| mail.contains(&bos_subject))
        .collect();
    assert_eq!(to_bo.len(), 1, "{all:?}");
    assert!(to_bo[0].contains("To: bo@example.com"), "{}", to_bo[0]);
    shop.go(&format!("{console}/tickets"));
    shop.type_into("#ticket-subject", "More cards, please");
    shop.type_into("#ticket-body", "We sell out every Friday.");
    shop.click("#open-ticket");
    shop.until_page_says("We sell out every Friday.");
    assert!(
        !shop.source().contains("move-queue"),
        "its own ticket is staff's to handle"
    );
    // A ticket about a customer of the operator's own is not the shop's.
    let direct = prepaid::card(&dir, "7307307303", 1_000_000, 0);
    staff.go(&format!("{console}/tickets"));
    staff.type_into("#ticket-account", &direct.to_string());
    staff.type_into("#ticket-subject", "Card check");
    staff.type_into("#ticket-body", "Checked by staff.");
    staff.click("#open-ticket");
    staff.until_page_says("Checked by staff.");
    let direct_ticket = staff.url();
    let direct_id = direct_ticket.rsplit('/').next().unwrap();
    shop.go(&format!("{console}/tickets/{direct_id}"));
    shop.until_page_says("Not found");
    staff.go(&format!("{console}/tickets?queue=support"));
    assert!(staff.text("#tickets").contains("More cards, please"));
    staff.screenshot("console-tickets");
}
