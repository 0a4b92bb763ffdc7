use super::*;

#[test]
fn hostnames_are_sanitized() {
    assert_eq!(sanitize_hostname("My VM_1.test"), "my-vm-1-test");
    assert_eq!(sanitize_hostname("--x--"), "x");
    assert_eq!(sanitize_hostname("!!!"), "server");
}
