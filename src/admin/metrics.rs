//! The metrics `/metrics` exports, described once: each gets its `# HELP` and `# TYPE`, and
//! every counter (with each label value it can take) is exported from zero at start, so a
//! rate or an alert works before the first event. README.md lists the same names.

use crate::policy::Policy;

/// Name, kind and help of every metric, as README.md documents them.
pub const METRICS: [(&str, Kind, &str); 10] = [
    (
        "markgate_decisions_total",
        Kind::Counter,
        "Decisions recorded, by verdict (allow, block) and marking class",
    ),
    (
        "markgate_queue_depth",
        Kind::Gauge,
        "Messages in the delivery queue (accepted, not yet delivered or bounced)",
    ),
    (
        "markgate_deliveries_total",
        Kind::Counter,
        "Delivery attempts of a message copy, by result (delivered, deferred, failed)",
    ),
    (
        "markgate_delivery_records_failed_total",
        Kind::Counter,
        "Delivery attempts whose record could not be written to the store",
    ),
    (
        "markgate_delivery_retries_total",
        Kind::Counter,
        "Deliveries scheduled again after a failed attempt",
    ),
    (
        "markgate_policy_reloads_total",
        Kind::Counter,
        "Policy reload attempts that changed something, by result (loaded, rejected)",
    ),
    (
        "markgate_checkpoints_total",
        Kind::Counter,
        "Signed checkpoints of the record chain written to the checkpoint log",
    ),
    (
        "markgate_checkpoint_failures_total",
        Kind::Counter,
        "Signed checkpoints of the record chain that could not be written",
    ),
    (
        "markgate_isa_days_to_review",
        Kind::Gauge,
        "Days until each ISA's next review (negative: overdue, the ISA is withdrawn)",
    ),
    (
        "markgate_isas_due",
        Kind::Gauge,
        "ISAs whose review is due within 30 days or overdue",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

/// Describe every metric and export each counter series at zero: the delivery and reload
/// results, and a decision counter per verdict and class of `policy`.
pub fn register(policy: &Policy) {
    for (name, kind, help) in METRICS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
        }
    }
    for class in &policy.markings.classes {
        for verdict in ["allow", "block"] {
            metrics::counter!("markgate_decisions_total", "verdict" => verdict, "class" => class.name.clone())
                .increment(0);
        }
    }
    for result in ["delivered", "deferred", "failed"] {
        metrics::counter!("markgate_deliveries_total", "result" => result).increment(0);
    }
    metrics::counter!("markgate_delivery_retries_total").increment(0);
    metrics::counter!("markgate_delivery_records_failed_total").increment(0);
    metrics::counter!("markgate_checkpoints_total").increment(0);
    metrics::counter!("markgate_checkpoint_failures_total").increment(0);
    for result in ["loaded", "rejected"] {
        metrics::counter!("markgate_policy_reloads_total", "result" => result).increment(0);
    }
    metrics::gauge!("markgate_queue_depth").increment(0.0);
    metrics::gauge!("markgate_isas_due").increment(0.0);
}
