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
