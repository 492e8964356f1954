//! The `tracing` feature and many groups: every event a group's node
//! emits inside a `MultiNode` is inside a `raft_group` span whose `group`
//! field names the group.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use raft_io::multi::{HostConfig, MultiNode};
use raft_io::{Event, MemoryLog, RaftConfig};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event as TracingEvent, Metadata, Subscriber};

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}").trim_matches('"').to_owned());
    }
}

/// Captures each event's fields together with the fields of the spans it
/// is in.
#[derive(Default)]
struct Capture {
    next: AtomicU64,
    spans: Mutex<BTreeMap<u64, BTreeMap<String, String>>>,
    stack: Mutex<Vec<u64>>,
    events: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        fields.insert("span".into(), attrs.metadata().name().into());
        self.spans.lock().unwrap().insert(id, fields);
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &TracingEvent<'_>) {
        let mut fields = BTreeMap::new();
        for id in self.stack.lock().unwrap().iter() {
            if let Some(span) = self.spans.lock().unwrap().get(id) {
                for (k, v) in span {
                    fields.insert(format!("span.{k}"), v.clone());
                }
            }
        }
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(fields);
    }
    fn enter(&self, id: &Id) {
        self.stack.lock().unwrap().push(id.into_u64());
    }
    fn exit(&self, _: &Id) {
        self.stack.lock().unwrap().pop();
    }
}

#[test]
fn events_of_a_group_carry_its_group() {
    let capture = Capture::default();
    let events = Arc::clone(&capture.events);
    tracing::subscriber::with_default(capture, || {
        let mut host: MultiNode<MemoryLog> = MultiNode::new(HostConfig::new(1));
        for g in [7, 9] {
            host.create_group(g, RaftConfig::single(1), MemoryLog::new()).unwrap();
        }
        host.step(9, Event::Campaign).unwrap();
    });
    let events = events.lock().unwrap();
    let role_changes: Vec<_> =
        events.iter().filter(|e| e.get("message").is_some_and(|m| m == "role changed")).collect();
    assert!(!role_changes.is_empty(), "{events:#?}");
    for e in role_changes {
        assert_eq!(e.get("span.span").map(String::as_str), Some("raft_group"), "{e:?}");
        assert_eq!(e.get("span.group").map(String::as_str), Some("9"), "{e:?}");
        assert_eq!(e.get("node").map(String::as_str), Some("1"), "{e:?}");
    }
}
