//! The documented example configuration loads: every key it shows is a real key.

#[test]
fn deploy_example_config_is_valid() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/markgate.example.toml");
    let config = markgate::config::Config::load(Some(&path)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.smtp.listen.to_string(), "127.0.0.1:2525");
    assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(config.admin.listen, "127.0.0.1:9090");
    assert_eq!(
        config.records.path,
        std::path::PathBuf::from("var/records.sqlite")
    );
}

/// The deployment example in README.md is a configuration markgate accepts, and routes the
/// force's own mail back to its MTA.
#[test]
fn readme_deployment_example_is_valid() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let section = readme
        .split("## Deployment")
        .nth(1)
        .expect("a deployment section");
    let toml = section
        .split("```toml\n")
        .nth(1)
        .and_then(|t| t.split("```").next())
        .expect("a toml example");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("markgate.toml");
    std::fs::write(&path, toml).unwrap();
    let config = markgate::config::Config::load_with(Some(&path), &markgate::config::SECTIONS, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(config.smtp.require_client_cert);
    let (name, route) = config.delivery.route("internal").unwrap();
    assert_eq!(
        (name, route.host.as_str()),
        ("internal", "mta.westmidlands.example")
    );
}
