//! Dialog creation (RFC 3261 §12.1), route sets from Record-Route, and in-dialog request
//! construction (§12.2.1.1) with loose and strict routing.

#![allow(clippy::unwrap_used)]

use talktime_sip::dialog::{Dialog, DialogError, DialogState, Role};
use talktime_sip::{Message, Method, Request, Response};

fn parse_request(text: &str) -> Request {
    let text = text.replace('\n', "\r\n");
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(request) => request,
        Message::Response(_) => panic!("not a request"),
    }
}

/// The INVITE as the UAS receives it, after two record-routing proxies.
fn invite_at_uas() -> Request {
    parse_request(
        "INVITE sip:bob@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP p2.example.com;branch=z9hG4bK2
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bK1
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK0
Record-Route: <sip:p2.example.com;lr>
Record-Route: <sip:p1.example.com;lr>
Max-Forwards: 68
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
To: Bob <sip:bob@biloxi.example.com>
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Length: 0

",
    )
}

/// The INVITE as the UAC sent it.
fn invite_from_uac() -> Request {
    parse_request(
        "INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK0
Max-Forwards: 70
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
To: Bob <sip:bob@biloxi.example.com>
Call-ID: a84b4c76e66710@pc33.atlanta.example.com
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
Content-Length: 0

",
    )
}

fn uas_response(status: u16) -> Response {
    let mut response = Response::for_request(&invite_at_uas(), status, "OK");
    response.set_to_tag("a6c85cf");
    // for_request copied the INVITE's Record-Route (RFC 3261 §12.1.1).
    response.headers.push("Contact", "<sip:bob@192.0.2.4>");
    response
}

fn routes(request: &Request) -> Vec<String> {
    request
        .route()
        .unwrap()
        .iter()
        .map(|route| route.uri.to_string())
        .collect()
}

#[test]
fn uac_route_set_is_the_record_route_reversed() {
    let mut dialog = Dialog::uac(&invite_from_uac(), &uas_response(200)).unwrap();
    assert_eq!(dialog.role(), Role::Uac);
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.id().local_tag(), "1928301774");
    assert_eq!(dialog.id().remote_tag(), "a6c85cf");
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@192.0.2.4");
    assert_eq!(dialog.next_hop().to_string(), "sip:p1.example.com;lr");

    let bye = dialog.new_request(Method::Bye, "SIP/2.0/UDP pc33.atlanta.example.com");
    // Loose routing: Request-URI is the remote target, Route is the route set.
    assert_eq!(bye.uri.to_string(), "sip:bob@192.0.2.4");
    assert_eq!(
        routes(&bye),
        vec!["sip:p1.example.com;lr", "sip:p2.example.com;lr"]
    );
    assert_eq!(bye.from().unwrap().tag(), Some("1928301774"));
    assert_eq!(bye.to().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(
        bye.call_id().unwrap(),
        "a84b4c76e66710@pc33.atlanta.example.com"
    );
    assert_eq!(bye.cseq().unwrap().sequence, 314160);
    assert_eq!(bye.cseq().unwrap().method, Method::Bye);
    assert_eq!(bye.max_forwards().unwrap(), Some(70));
    // BYE is no target refresh: no Contact.
    assert!(bye.headers.get("Contact").is_none());
    // The request survives the wire.
    let parsed = Message::parse(&bye.to_bytes()).unwrap();
    assert_eq!(parsed.to_bytes(), bye.to_bytes());
}

#[test]
fn uas_route_set_keeps_the_record_route_order() {
    let mut dialog = Dialog::uas(&invite_at_uas(), &uas_response(200)).unwrap();
    assert_eq!(dialog.role(), Role::Uas);
    assert_eq!(dialog.id().local_tag(), "a6c85cf");
    assert_eq!(dialog.id().remote_tag(), "1928301774");
    assert_eq!(dialog.remote_seq(), Some(314159));
    assert_eq!(
        dialog.remote_target().to_string(),
        "sip:alice@pc33.atlanta.example.com"
    );
    let bye = dialog.new_request(Method::Bye, "SIP/2.0/UDP 192.0.2.4");
    assert_eq!(bye.uri.to_string(), "sip:alice@pc33.atlanta.example.com");
    assert_eq!(
        routes(&bye),
        vec!["sip:p2.example.com;lr", "sip:p1.example.com;lr"]
    );
    // Our From is the INVITE's To with our tag; our To is the INVITE's From.
    assert_eq!(
        bye.from().unwrap().uri.to_string(),
        "sip:bob@biloxi.example.com"
    );
    assert_eq!(bye.from().unwrap().tag(), Some("a6c85cf"));
    assert_eq!(bye.to().unwrap().tag(), Some("1928301774"));
    // The UAS's local sequence is its own, independent of the INVITE's.
    assert_eq!(bye.cseq().unwrap().sequence, 1);
}

#[test]
fn strict_router_becomes_the_request_uri() {
    let mut response = Response::for_request(&invite_from_uac(), 200, "OK");
    response.set_to_tag("x");
    response
        .headers
        .push("Record-Route", "<sip:loose.example.com;lr>");
    response
        .headers
        .push("Record-Route", "<sip:strict.example.com>");
    response.headers.push("Contact", "<sip:bob@192.0.2.4>");
    let mut dialog = Dialog::uac(&invite_from_uac(), &response).unwrap();
    let bye = dialog.new_request(Method::Bye, "SIP/2.0/UDP pc33.atlanta.example.com");
    // §12.2.1.1: first route has no lr, so it is the Request-URI, the rest of the route
    // set follows, and the remote target is the last Route.
    assert_eq!(bye.uri.to_string(), "sip:strict.example.com");
    assert_eq!(
        routes(&bye),
        vec!["sip:loose.example.com;lr", "sip:bob@192.0.2.4"]
    );
}

#[test]
fn no_record_route_means_no_route_header() {
    let mut response = Response::for_request(&invite_from_uac(), 200, "OK");
    response.set_to_tag("x");
    response.headers.push("Contact", "<sip:bob@192.0.2.4:5070>");
    let mut dialog = Dialog::uac(&invite_from_uac(), &response).unwrap();
    assert!(dialog.route_set().is_empty());
    let info = dialog.new_request(Method::Info, "SIP/2.0/UDP pc33.atlanta.example.com");
    assert_eq!(info.uri.to_string(), "sip:bob@192.0.2.4:5070");
    assert!(info.headers.get("Route").is_none());
    assert_eq!(dialog.next_hop().to_string(), "sip:bob@192.0.2.4:5070");
}

#[test]
fn early_dialog_from_a_tagged_180_is_confirmed_by_the_200() {
    let mut ringing = Response::for_request(&invite_from_uac(), 180, "Ringing");
    ringing.set_to_tag("a6c85cf");
    ringing
        .headers
        .push("Record-Route", "<sip:early.example.com;lr>");
    ringing.headers.push("Contact", "<sip:bob@198.51.100.1>");
    let mut dialog = Dialog::uac(&invite_from_uac(), &ringing).unwrap();
    assert_eq!(dialog.state(), DialogState::Early);
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@198.51.100.1");

    // §13.2.2.4: the 2xx recomputes the route set and updates the remote target.
    dialog
        .update_from_response(&Method::Invite, &uas_response(200))
        .unwrap();
    assert_eq!(dialog.state(), DialogState::Confirmed);
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@192.0.2.4");
    let uris: Vec<String> = dialog
        .route_set()
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    assert_eq!(uris, vec!["sip:p1.example.com;lr", "sip:p2.example.com;lr"]);

    // A response from another fork does not belong here.
    let mut other = uas_response(200);
    other
        .headers
        .set("To", "Bob <sip:bob@biloxi.example.com>;tag=fork2");
    assert_eq!(
        dialog.update_from_response(&Method::Invite, &other),
        Err(DialogError::WrongDialog)
    );
}

#[test]
fn responses_that_cannot_create_dialogs_are_refused() {
    let mut untagged = Response::for_request(&invite_from_uac(), 180, "Ringing");
    untagged.headers.push("Contact", "<sip:bob@192.0.2.4>");
    assert_eq!(
        Dialog::uac(&invite_from_uac(), &untagged).unwrap_err(),
        DialogError::MissingTag("To")
    );
    let mut trying = Response::for_request(&invite_from_uac(), 100, "Trying");
    trying.set_to_tag("x");
    assert_eq!(
        Dialog::uac(&invite_from_uac(), &trying).unwrap_err(),
        DialogError::NotDialogCreating(100)
    );
    let mut no_contact = invite_at_uas();
    no_contact.headers.remove("Contact");
    assert_eq!(
        Dialog::uas(&no_contact, &uas_response(200)).unwrap_err(),
        DialogError::MissingHeader("Contact")
    );
}

#[test]
fn cseq_increments_per_request_and_ack_reuses_the_invite_number() {
    let mut dialog = Dialog::uac(&invite_from_uac(), &uas_response(200)).unwrap();
    let ack = dialog
        .ack(&uas_response(200), "SIP/2.0/UDP pc33.atlanta.example.com")
        .unwrap();
    assert_eq!(ack.cseq().unwrap().sequence, 314159);
    assert_eq!(ack.cseq().unwrap().method, Method::Ack);
    assert_eq!(ack.uri.to_string(), "sip:bob@192.0.2.4");
    assert_eq!(routes(&ack).len(), 2);
    assert_eq!(dialog.local_seq(), 314159, "the ACK uses no CSeq number");

    dialog.set_local_contact("<sip:alice@pc33.atlanta.example.com;transport=udp>");
    let reinvite = dialog.new_request(Method::Invite, "SIP/2.0/UDP pc33.atlanta.example.com");
    let info = dialog.new_request(Method::Info, "SIP/2.0/UDP pc33.atlanta.example.com");
    let update = dialog.new_request(Method::Update, "SIP/2.0/UDP pc33.atlanta.example.com");
    let options = dialog.new_request(Method::Options, "SIP/2.0/UDP pc33.atlanta.example.com");
    let numbers: Vec<u32> = [&reinvite, &info, &update, &options]
        .iter()
        .map(|r| r.cseq().unwrap().sequence)
        .collect();
    assert_eq!(numbers, vec![314160, 314161, 314162, 314163]);
    // Target refresh requests carry our Contact.
    assert_eq!(
        reinvite.headers.get("Contact"),
        Some("<sip:alice@pc33.atlanta.example.com;transport=udp>")
    );
    assert!(update.headers.get("Contact").is_some());
    assert!(info.headers.get("Contact").is_none());

    // The ACK for the re-INVITE's 2xx carries the re-INVITE's number.
    let mut reinvite_ok = Response::for_request(&reinvite, 200, "OK");
    reinvite_ok.headers.push("Contact", "<sip:bob@192.0.2.99>");
    let ack = dialog
        .ack(&reinvite_ok, "SIP/2.0/UDP pc33.atlanta.example.com")
        .unwrap();
    assert_eq!(ack.cseq().unwrap().sequence, 314160);
    // And the 2xx to the target refresh moved the remote target.
    dialog
        .update_from_response(&Method::Invite, &reinvite_ok)
        .unwrap();
    assert_eq!(dialog.remote_target().to_string(), "sip:bob@192.0.2.99");
}
