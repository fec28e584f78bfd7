//! Dialogs (RFC 3261 §12): UAC and UAS state, route sets, CSeq, the ACK for 2xx
//! (§13.2.2.4) and the UAS core's 2xx retransmission (§13.3.1.4).
//!
//! A [`Dialog`] is plain data plus request builders. A [`DialogTable`] holds the dialogs
//! of one endpoint, routes incoming in-dialog requests (481 for unknown dialogs, 500 for
//! out-of-order CSeq) and retransmits our 2xx responses until their ACK arrives; like the
//! transaction layer it is sans-IO, driven by `handle_timeout(now)` and drained through
//! `poll_transmit`, `poll_event` and `poll_timeout`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::transaction::{Peer, TimerConfig, Transmit};
use crate::{Headers, Message, Method, NameAddr, Request, Response, Scheme, Uri};

/// Errors building or updating a dialog from messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("message has no usable {0} header")]
    MissingHeader(&'static str),
    #[error("the {0} header has no tag")]
    MissingTag(&'static str),
    #[error("a {0} response does not create a dialog")]
    NotDialogCreating(u16),
    #[error("CSeq {received} is lower than the remote sequence number {remote}")]
    OutOfOrder { received: u32, remote: u32 },
    #[error("the message belongs to another dialog")]
    WrongDialog,
}

/// §12: a dialog is identified by Call-ID, local tag and remote tag.
///
/// One allocation shared by its clones: a call's two dialogs are named in the dialog table,
/// each dialog, the switch's index and the call's session (issue 19: memory a live call).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId(std::sync::Arc<DialogKey>);

#[derive(Debug, PartialEq, Eq, Hash)]
struct DialogKey {
    call_id: String,
    local_tag: String,
    remote_tag: String,
}

impl DialogId {
    pub fn new(call_id: &str, local_tag: &str, remote_tag: &str) -> DialogId {
        DialogId(std::sync::Arc::new(DialogKey {
            call_id: call_id.to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: remote_tag.to_owned(),
        }))
    }

    pub fn call_id(&self) -> &str {
        &self.0.call_id
    }

    pub fn local_tag(&self) -> &str {
        &self.0.local_tag
    }

    pub fn remote_tag(&self) -> &str {
        &self.0.remote_tag
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a 1xx with a To tag.
    Early,
    /// Created or confirmed by a 2xx.
    Confirmed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Uac,
    Uas,
}

/// The state of one dialog (§12.1).
#[derive(Debug, Clone)]
pub struct Dialog {
    id: DialogId,
    role: Role,
    state: DialogState,
    /// Our identity with our tag (From in our requests).
    local: NameAddr,
    /// The peer's identity with its tag (To in our requests).
    remote: NameAddr,
    remote_target: Uri,
    /// In the order our requests carry it (already reversed for the UAC).
    route_set: Vec<NameAddr>,
    /// The last CSeq number we used.
    local_seq: u32,
    remote_seq: Option<u32>,
    /// Our Contact, put in target refresh requests.
    local_contact: Option<String>,
    secure: bool,
}

impl Dialog {
    /// §12.1.2: the UAC's dialog from our INVITE and a 101-299 response with a To tag.
    pub fn uac(invite: &Request, response: &Response) -> Result<Dialog, DialogError> {
        if !(101..300).contains(&response.status) {
            return Err(DialogError::NotDialogCreating(response.status));
        }
        let local = invite
            .from()
            .map_err(|_| DialogError::MissingHeader("From"))?;
        let remote = response
            .to()
            .map_err(|_| DialogError::MissingHeader("To"))?;
        let local_tag = local.tag().ok_or(DialogError::MissingTag("From"))?;
        let remote_tag = remote.tag().ok_or(DialogError::MissingTag("To"))?;
        let call_id = invite
            .call_id()
            .map_err(|_| DialogError::MissingHeader("Call-ID"))?;
        let cseq = invite
            .cseq()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        let mut route_set = name_addrs(&response.headers, "Record-Route")?;
        route_set.reverse();
        // A 1xx may lack Contact; the Request-URI is the best target until one arrives.
        let remote_target = first_contact(&response.headers)?
            .map(|contact| contact.uri)
            .unwrap_or_else(|| invite.uri.clone());
        Ok(Dialog {
            id: DialogId::new(call_id, local_tag, remote_tag),
            role: Role::Uac,
            state: state_for(response.status),
            local,
            remote,
            remote_target,
            route_set,
            local_seq: cseq.sequence,
            remote_seq: None,
            local_contact: invite.headers.get("Contact").map(str::to_owned),
            secure: *invite.uri.scheme() == Scheme::Sips,
        })
    }

    /// §12.1.1: the UAS's dialog from the peer's INVITE and our 101-299 response, which
    /// must carry our To tag.
    pub fn uas(invite: &Request, response: &Response) -> Result<Dialog, DialogError> {
        if !(101..300).contains(&response.status) {
            return Err(DialogError::NotDialogCreating(response.status));
        }
        let local = response
            .to()
            .map_err(|_| DialogError::MissingHeader("To"))?;
        let remote = invite
            .from()
            .map_err(|_| DialogError::MissingHeader("From"))?;
        let local_tag = local.tag().ok_or(DialogError::MissingTag("To"))?;
        // RFC 2543 peers may send no From tag: the remote tag is then empty (§12.1.1).
        let remote_tag = remote.tag().unwrap_or("");
        let call_id = invite
            .call_id()
            .map_err(|_| DialogError::MissingHeader("Call-ID"))?;
        let cseq = invite
            .cseq()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        let remote_target = first_contact(&invite.headers)?
            .ok_or(DialogError::MissingHeader("Contact"))?
            .uri;
        Ok(Dialog {
            id: DialogId::new(call_id, local_tag, remote_tag),
            role: Role::Uas,
            state: state_for(response.status),
            local,
            remote,
            remote_target,
            route_set: name_addrs(&invite.headers, "Record-Route")?,
            local_seq: 0,
            remote_seq: Some(cseq.sequence),
            local_contact: response.headers.get("Contact").map(str::to_owned),
            secure: *invite.uri.scheme() == Scheme::Sips,
        })
    }

    pub fn id(&self) -> &DialogId {
        &self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn state(&self) -> DialogState {
        self.state
    }

    pub fn remote_target(&self) -> &Uri {
        &self.remote_target
    }

    pub fn route_set(&self) -> &[NameAddr] {
        &self.route_set
    }

    pub fn local_seq(&self) -> u32 {
        self.local_seq
    }

    pub fn remote_seq(&self) -> Option<u32> {
        self.remote_seq
    }

    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Where the next in-dialog request goes: the first route, else the remote target.
    /// The shell resolves it (RFC 3263) to a [`Peer`].
    pub fn next_hop(&self) -> &Uri {
        self.route_set
            .first()
            .map(|route| &route.uri)
            .unwrap_or(&self.remote_target)
    }

    /// Sets the Contact we put in target refresh requests (re-INVITE, UPDATE).
    pub fn set_local_contact(&mut self, contact: &str) {
        self.local_contact = Some(contact.to_owned());
    }

    /// A response to a request we sent in this dialog (UAC side of any transaction).
    /// A 2xx confirms an early dialog and, per §13.2.2.4, recomputes its route set; 2xx
    /// responses to target refresh requests replace the remote target (§12.2.1.2).
    pub fn update_from_response(
        &mut self,
        method: &Method,
        response: &Response,
    ) -> Result<(), DialogError> {
        let to = response
            .to()
            .map_err(|_| DialogError::MissingHeader("To"))?;
        if to.tag() != Some(self.id.remote_tag()) {
            return Err(DialogError::WrongDialog);
        }
        let success = (200..300).contains(&response.status);
        if *method == Method::Invite && self.state == DialogState::Early && success {
            self.state = DialogState::Confirmed;
            if self.role == Role::Uac {
                let mut route_set = name_addrs(&response.headers, "Record-Route")?;
                route_set.reverse();
                self.route_set = route_set;
            }
        }
        let refresh = is_target_refresh(method);
        let early_update = *method == Method::Invite && response.status < 200;
        if ((refresh && success) || early_update)
            && let Some(contact) = first_contact(&response.headers)?
        {
            self.remote_target = contact.uri;
        }
        Ok(())
    }

    /// The UAS confirms its early dialog when it sends the 2xx.
    pub fn confirm(&mut self) {
        self.state = DialogState::Confirmed;
    }

    /// §12.2.2: checks an incoming in-dialog request and updates the remote CSeq and, for
    /// target refresh requests, the remote target. ACK and CANCEL carry the CSeq of the
    /// request they belong to and are not checked.
    pub fn receive_request(&mut self, request: &Request) -> Result<(), DialogError> {
        if matches!(request.method, Method::Ack | Method::Cancel) {
            return Ok(());
        }
        let cseq = request
            .cseq()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        if let Some(remote) = self.remote_seq
            && cseq.sequence < remote
        {
            return Err(DialogError::OutOfOrder {
                received: cseq.sequence,
                remote,
            });
        }
        self.remote_seq = Some(cseq.sequence);
        if is_target_refresh(&request.method)
            && let Some(contact) = first_contact(&request.headers)?
        {
            self.remote_target = contact.uri;
        }
        Ok(())
    }

    /// §12.2.1.1: a new request in the dialog (BYE, re-INVITE, INFO, UPDATE, OPTIONS...),
    /// with the next local CSeq. `via` is our top Via without branch (e.g.
    /// `SIP/2.0/UDP 192.0.2.1:5060;rport`); the transaction layer adds the branch.
    pub fn new_request(&mut self, method: Method, via: &str) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1);
        let sequence = self.local_seq;
        let contact = is_target_refresh(&method)
            .then(|| self.local_contact.clone())
            .flatten();
        let mut request = self.build(method.clone(), sequence, via);
        if let Some(contact) = contact {
            request.headers.push("Contact", &contact);
        }
        request
    }

    /// Skips `count` local sequence numbers. A request built ahead of time (the BYE a switch
    /// keeps for crash recovery) then stays above every request sent in the meantime; a UAS
    /// accepts gaps, only lower numbers are out of order (§12.2.2).
    pub fn skip_local_sequence(&mut self, count: u32) {
        self.local_seq = self.local_seq.wrapping_add(count);
    }

    /// §13.2.2.4: the ACK for a 2xx to our (re-)INVITE. It has the CSeq number of the 2xx
    /// (the INVITE's), does not consume a local CSeq number and is its own transaction
    /// (fresh branch, added by `TransactionLayer::send_stateless`). The caller adds the
    /// answer body if the 2xx carried an offer, and the INVITE's credentials if any.
    pub fn ack(&self, response: &Response, via: &str) -> Result<Request, DialogError> {
        let cseq = response
            .cseq()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?;
        Ok(self.build(Method::Ack, cseq.sequence, via))
    }

    fn build(&self, method: Method, sequence: u32, via: &str) -> Request {
        let (uri, routes) = self.request_target();
        let mut headers = Headers::new();
        headers.push("Via", via);
        for route in &routes {
            headers.push("Route", route);
        }
        headers.push("Max-Forwards", "70");
        headers.push("From", &self.local.to_string());
        headers.push("To", &self.remote.to_string());
        headers.push("Call-ID", self.id.call_id());
        headers.push("CSeq", &format!("{sequence} {method}"));
        Request {
            method,
            uri,
            headers,
            body: Vec::new(),
        }
    }

    /// §12.2.1.1: loose routing keeps the remote target as Request-URI; a strict router
    /// (first route without `lr`) becomes the Request-URI and the remote target goes last.
    fn request_target(&self) -> (Uri, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let routes = self.route_set.iter().map(|route| route.to_string());
        if first.uri.param("lr").is_some() {
            return (self.remote_target.clone(), routes.collect());
        }
        let mut uri = first.uri.clone();
        uri.params_mut().remove("method");
        let mut rest: Vec<String> = routes.skip(1).collect();
        rest.push(format!("<{}>", self.remote_target));
        (uri, rest)
    }
}

fn state_for(status: u16) -> DialogState {
    if status < 200 {
        DialogState::Early
    } else {
        DialogState::Confirmed
    }
}

/// Requests that may change the remote target (§12.2: re-INVITE; RFC 3311 UPDATE; the
/// event framework's SUBSCRIBE/NOTIFY and REFER).
fn is_target_refresh(method: &Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Update | Method::Subscribe | Method::Notify | Method::Refer
    )
}

fn name_addrs(headers: &Headers, name: &'static str) -> Result<Vec<NameAddr>, DialogError> {
    headers
        .get_all(name)
        .map(|value| {
            value
                .parse::<NameAddr>()
                .map_err(|_| DialogError::MissingHeader(name))
        })
        .collect()
}

fn first_contact(headers: &Headers) -> Result<Option<NameAddr>, DialogError> {
    headers
        .get_all("Contact")
        .next()
        .map(|value| {
            value
                .parse::<NameAddr>()
                .map_err(|_| DialogError::MissingHeader("Contact"))
        })
        .transpose()
}

/// What to do with an incoming request, according to the dialog table.
#[derive(Debug, Clone)]
pub enum Routing {
    /// No To tag: a dialog-creating or out-of-dialog request for the TU.
    OutOfDialog,
    /// Matched this dialog and passed the CSeq check.
    InDialog(DialogId),
    /// Answer with this response (481 unknown dialog, 500 out-of-order CSeq).
    Reject(Response),
    /// An ACK for no known dialog: nothing can answer an ACK, so drop it.
    Drop,
}

/// Reports from the dialog table to the TU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogEvent {
    /// §13.3.1.4: our 2xx was retransmitted for 64*T1 without an ACK. The TU should end
    /// the session with a BYE.
    AckTimeout { dialog: DialogId },
    /// The ACK for our 2xx arrived; retransmission stopped.
    AckReceived { dialog: DialogId },
}

#[derive(Debug)]
struct Retransmission {
    response: Response,
    destination: Peer,
    sequence: u32,
    interval: Duration,
    next: Option<Instant>,
    give_up: Instant,
}

/// The dialogs of one endpoint, with the UAS core's 2xx retransmission.
#[derive(Debug)]
pub struct DialogTable {
    config: TimerConfig,
    /// Boxed: the table grows by doubling, and a slot is a pointer, not a whole dialog.
    dialogs: HashMap<DialogId, Box<Dialog>>,
    retransmissions: HashMap<DialogId, Retransmission>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<DialogEvent>,
}

impl DialogTable {
    pub fn new(config: TimerConfig) -> DialogTable {
        DialogTable {
            config,
            dialogs: HashMap::new(),
            retransmissions: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.dialogs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.dialogs.is_empty()
    }

    /// The ids of every dialog, in no particular order.
    pub fn ids(&self) -> Vec<DialogId> {
        self.dialogs.keys().cloned().collect()
    }

    /// Adds (or replaces) a dialog and returns its id.
    pub fn insert(&mut self, dialog: Dialog) -> DialogId {
        let id = dialog.id.clone();
        self.dialogs.insert(id.clone(), Box::new(dialog));
        id
    }

    pub fn get(&self, id: &DialogId) -> Option<&Dialog> {
        self.dialogs.get(id).map(Box::as_ref)
    }

    pub fn get_mut(&mut self, id: &DialogId) -> Option<&mut Dialog> {
        self.dialogs.get_mut(id).map(Box::as_mut)
    }

    /// Forgets a dialog (after BYE) and any 2xx retransmission for it.
    pub fn remove(&mut self, id: &DialogId) -> Option<Dialog> {
        self.retransmissions.remove(id);
        self.dialogs.remove(id).map(|dialog| *dialog)
    }

    /// UAC: a response to our INVITE. A 101-299 with a To tag creates the dialog (early
    /// or confirmed) or updates it; each fork (To tag) gets its own dialog. Returns the
    /// dialog id, or `None` for responses that make no dialog (100, failures).
    pub fn handle_invite_response(
        &mut self,
        invite: &Request,
        response: &Response,
    ) -> Result<Option<DialogId>, DialogError> {
        if !(101..300).contains(&response.status) {
            return Ok(None);
        }
        let Some(remote_tag) = response
            .to()
            .ok()
            .and_then(|to| to.tag().map(str::to_owned))
        else {
            return Ok(None);
        };
        let from = invite
            .from()
            .map_err(|_| DialogError::MissingHeader("From"))?;
        let id = DialogId::new(
            invite
                .call_id()
                .map_err(|_| DialogError::MissingHeader("Call-ID"))?,
            from.tag().ok_or(DialogError::MissingTag("From"))?,
            &remote_tag,
        );
        match self.dialogs.get_mut(&id) {
            Some(dialog) => dialog.update_from_response(&Method::Invite, response)?,
            None => {
                self.insert(Dialog::uac(invite, response)?);
            }
        }
        Ok(Some(id))
    }

    /// Classifies an incoming request (§12.2.2). ACKs for our 2xx stop its
    /// retransmission and raise [`DialogEvent::AckReceived`].
    pub fn route_request(&mut self, request: &Request) -> Routing {
        let Some(id) = incoming_id(request) else {
            return Routing::OutOfDialog;
        };
        let Some(dialog) = self.dialogs.get_mut(&id) else {
            if request.method == Method::Ack {
                return Routing::Drop;
            }
            return Routing::Reject(Response::for_request(
                request,
                481,
                "Call/Transaction Does Not Exist",
            ));
        };
        if let Err(error) = dialog.receive_request(request) {
            return match error {
                DialogError::OutOfOrder { .. } => {
                    Routing::Reject(Response::for_request(request, 500, "Server Internal Error"))
                }
                _ => Routing::Reject(Response::for_request(request, 400, "Bad Request")),
            };
        }
        if request.method == Method::Ack {
            self.ack_arrived(&id, request);
        }
        Routing::InDialog(id)
    }

    /// §13.3.1.4: after sending a 2xx to an INVITE through its server transaction, the
    /// UAS core retransmits it (T1 doubling up to T2, unreliable transports only) until
    /// the ACK arrives, and gives up after 64*T1.
    pub fn start_2xx_retransmission(
        &mut self,
        dialog: &DialogId,
        response: Response,
        destination: Peer,
        now: Instant,
    ) -> Result<(), DialogError> {
        let sequence = response
            .cseq()
            .map_err(|_| DialogError::MissingHeader("CSeq"))?
            .sequence;
        let t1 = self.config.t1;
        let next = (!destination.is_reliable()).then_some(now + t1);
        self.retransmissions.insert(
            dialog.clone(),
            Retransmission {
                response,
                destination,
                sequence,
                interval: t1,
                next,
                give_up: now + t1.saturating_mul(64),
            },
        );
        Ok(())
    }

    /// Whether our 2xx in this dialog still waits for its ACK.
    pub fn awaiting_ack(&self, dialog: &DialogId) -> bool {
        self.retransmissions.contains_key(dialog)
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (id, pending) in self.retransmissions.iter_mut() {
            if pending.give_up <= now {
                expired.push(id.clone());
                continue;
            }
            // Catch up on every retransmission due, so a late wake-up keeps the schedule.
            while let Some(next) = pending.next.filter(|next| *next <= now) {
                self.transmits.push_back(Transmit {
                    destination: pending.destination,
                    message: Message::Response(pending.response.clone()),
                    transaction: None,
                });
                pending.interval = pending.interval.saturating_mul(2).min(self.config.t2);
                pending.next = Some(next + pending.interval);
            }
        }
        expired.sort_by(|a, b| a.call_id().cmp(b.call_id()));
        for id in expired {
            self.retransmissions.remove(&id);
            self.events
                .push_back(DialogEvent::AckTimeout { dialog: id });
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.retransmissions
            .values()
            .map(|pending| match pending.next {
                Some(next) => next.min(pending.give_up),
                None => pending.give_up,
            })
            .min()
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<DialogEvent> {
        self.events.pop_front()
    }

    fn ack_arrived(&mut self, id: &DialogId, ack: &Request) {
        let matches = self.retransmissions.get(id).is_some_and(|pending| {
            ack.cseq()
                .is_ok_and(|cseq| cseq.sequence == pending.sequence)
        });
        if matches {
            self.retransmissions.remove(id);
            self.events
                .push_back(DialogEvent::AckReceived { dialog: id.clone() });
        }
    }
}

/// The dialog id of an incoming request, from our point of view: the To tag is ours.
fn incoming_id(request: &Request) -> Option<DialogId> {
    let to = request.to().ok()?;
    let local_tag = to.tag()?.to_owned();
    let remote_tag = request
        .from()
        .ok()
        .and_then(|from| from.tag().map(str::to_owned))
        .unwrap_or_default();
    Some(DialogId::new(
        request.call_id().ok()?,
        &local_tag,
        &remote_tag,
    ))
}
