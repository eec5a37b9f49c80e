//! The API an agent author implements: a NOTIFY's messages in, actions out.
//!
//! ```
//! use logwire_spop::handler::{Handler, Notify};
//! use logwire_spop::{Action, Scope, TypedData};
//!
//! struct BlockAdmin;
//! impl Handler for BlockAdmin {
//!     fn on_notify(&self, notify: &Notify, actions: &mut Vec<Action>) {
//!         for m in &notify.messages {
//!             if m.arg("path").and_then(|p| p.as_str()).is_some_and(|p| p.starts_with("/admin")) {
//!                 actions.push(Action::set_var(Scope::Txn, "block", TypedData::Bool(true)));
//!             }
//!         }
//!     }
//! }
//! ```

use crate::message::{Action, Message};
use bytes::Bytes;

/// One NOTIFY frame, reassembled if it was fragmented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub stream_id: u64,
    pub frame_id: u64,
    /// The engine-id HAProxy announced for this connection (one per HAProxy thread in ≤ 3.0).
    pub engine_id: Option<Bytes>,
    pub messages: Vec<Message>,
    /// Number of frames it arrived in (1 unless fragmented).
    pub fragments: u32,
}

/// Decides the actions of each NOTIFY. Called on the connection's task: keep it quick and non-blocking
/// (the runtime's [`AsyncHandler`] is the way to do slow work).
pub trait Handler: Send + Sync + 'static {
    /// Push the actions to send back in the ACK. Leaving `actions` empty sends an empty ACK.
    fn on_notify(&self, notify: &Notify, actions: &mut Vec<Action>);
}

impl<F> Handler for F
where
    F: Fn(&Notify, &mut Vec<Action>) + Send + Sync + 'static,
{
    fn on_notify(&self, notify: &Notify, actions: &mut Vec<Action>) {
        self(notify, actions)
    }
}

/// A handler that answers every NOTIFY with an empty ACK.
#[derive(Debug, Clone, Copy, Default)]
pub struct AckAll;

impl Handler for AckAll {
    fn on_notify(&self, _notify: &Notify, _actions: &mut Vec<Action>) {}
}

impl<H: Handler + ?Sized> Handler for std::sync::Arc<H> {
    fn on_notify(&self, notify: &Notify, actions: &mut Vec<Action>) {
        (**self).on_notify(notify, actions)
    }
}

/// A boxed future, as [`AsyncHandler`] returns.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A handler that needs to wait (a lookup, a remote call). The runtime runs each call on its own task
/// and sends the ACK when it finishes, so ACKs go out in completion order, not arrival order.
pub trait AsyncHandler: Send + Sync + 'static {
    fn on_notify(&self, notify: Notify) -> BoxFuture<Vec<Action>>;
}
