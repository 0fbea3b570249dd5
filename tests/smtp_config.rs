//! The SMTP and delivery configuration contract: documented keys load, environment
//! overrides apply, and every error is reported at once.

use std::path::Path;
use std::time::Duration;

use markgate::config::smtp::BareLineEndings;
use markgate::config::Config;

#[test]
fn example_config_with_every_key_loads_and_env_overrides_it() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp/markgate.toml");
    std::env::set_var("MARKGATE_SMTP__LISTEN", "127.0.0.1:2600");
    std::env::set_var("MARKGATE_DELIVERY__OUTBOX", "/tmp/elsewhere");
    std::env::set_var("MARKGATE_DELIVERY__ROUTES__SECURE__PORT", "2526");
    let config = Config::load(Some(&file)).unwrap_or_else(|e| panic!("{e}"));
    std::env::remove_var("MARKGATE_SMTP__LISTEN");
    std::env::remove_var("MARKGATE_DELIVERY__OUTBOX");
    std::env::remove_var("MARKGATE_DELIVERY__ROUTES__SECURE__PORT");
    assert_eq!(config.smtp.listen, "127.0.0.1:2600");
    assert_eq!(config.delivery.outbox, Path::new("/tmp/elsewhere"));
    assert_eq!(config.smtp.command_timeout, Duration::from_secs(300));
    assert_eq!(config.smtp.bare_line_endings, BareLineEndings::Reject);
    assert_eq!(config.smtp.max_command_line, 600);
    assert_eq!(config.delivery.lifetime, Duration::from_secs(5 * 86400));
    let (name, route) = config.delivery.route("secure").unwrap();
    assert_eq!(
        (name, route.host.as_str(), route.port),
        ("secure", "smarthost.pnn.example", 2526)
    );
    assert!(
        config.delivery.route("internal").is_none(),
        "no route: outbox"
    );
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::default();
    assert_eq!(c.smtp.listen, "127.0.0.1:2525");
    assert_eq!(c.spool.dir, Path::new("var/spool"));
    assert_eq!(c.delivery.outbox, Path::new("var/outbox"));
    assert!(c.delivery.routes.is_empty());
    assert_eq!(
        c.smtp.max_command_line, 564,
        "512 (RFC 5321) + SIZE 26 + BODY 16 + SMTPUTF8 10"
    );
    assert!(c.validate().is_empty(), "{:?}", c.validate());
}

#[test]
fn every_error_is_reported_at_once() {
    let mut c = Config::default();
    c.smtp.listen = "nowhere".into();
    c.smtp.relay_networks = vec!["10.0.0.0/99".into()];
    c.smtp.require_client_cert = true;
    c.smtp.max_recipients = 0;
    c.smtp.max_command_line = 100;
    c.delivery.concurrency = 0;
    let errors = c.validate();
    for key in [
        "smtp.listen",
        "smtp.relay_networks",
        "smtp.require_client_cert",
        "smtp.max_recipients",
        "smtp.max_command_line",
        "delivery.concurrency",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(key)),
            "{key} missing from {errors:#?}"
        );
    }
}
