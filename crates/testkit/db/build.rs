//! Tells the macros of this crate which optional test services were configured when the tests were built:
//! `cfg(crm_test_mysql)`, `cfg(crm_test_postgres)` and `cfg(crm_test_redis_server)` are set for the variables
//! that are. Stories needing a missing one are then reported as ignored, with the variable to set; under
//! `CI=true` a missing variable fails the build instead, so CI never passes a story it did not run.
//!
//! Only test targets depend on this crate, so no build of the shipped binary runs this script.

#[path = "src/requirement.rs"]
#[allow(dead_code)]
mod requirement;

fn main() {
    println!("cargo::rerun-if-env-changed=CI");
    let ci = requirement::is_ci();
    let mut missing = Vec::new();
    for need in requirement::ALL {
        println!("cargo::rerun-if-env-changed={}", need.variable);
        println!("cargo::rustc-check-cfg=cfg({})", need.cfg);
        if need.is_set() {
            println!("cargo::rustc-cfg={}", need.cfg);
        } else {
            missing.push(format!("{} ({})", need.variable, need.what));
        }
    }
    if ci && !missing.is_empty() {
        panic!(
            "CI is set, so every test service must be configured, but these variables are not: {}. \
             Set them (see .ci/run), or unset CI to report the stories that need them as ignored.",
            missing.join(", ")
        );
    }
}
