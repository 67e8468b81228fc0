//! `-L` listings through the renderer, and `-h`.

use lvslab_ipvsadm::listing::{self, Layout, ListingOptions};
use lvslab_spec::lb::LoadBalancer;

use crate::support::*;

#[test]
fn list_numeric_prints_the_article_table_through_the_renderer() {
    let mut lb = article_nat();
    let out = sh(&mut lb, "ipvsadm -L -n");
    assert_eq!((out.exit_code, out.stderr.as_str()), (0, ""));
    let expected = format!(
        "{HEADER}TCP  192.168.80.10:80 wrr\n{}{}{}",
        dest_line("192.168.80.11:8080", "Masq", 3),
        dest_line("192.168.80.12:8080", "Masq", 2),
        dest_line("192.168.80.13:8080", "Masq", 1),
    );
    assert_eq!(out.stdout, expected);
    let rendered = listing::render(
        &lb.info().expect("info"),
        &lb.services,
        &ListingOptions::default(),
    );
    assert_eq!(out.stdout, rendered);
    // Spellings ipvsadm accepts for the same listing.
    for line in ["-Ln", "-l -n", "--list --numeric", "-L", "-L -n --sort", ""] {
        assert_eq!(sh(&mut lb, line).stdout, expected, "`{line}`");
    }
}

#[test]
fn listing_layouts_and_flags_reach_the_renderer() {
    let mut lb = article_nat();
    lb.services[0].stats.conns = 123_456_789;
    let info = lb.info().expect("info");
    for (line, layout, nosort, exact) in [
        ("-L -n --stats", Layout::Stats, false, false),
        ("-L -n --stats --exact", Layout::Stats, false, true),
        ("-L -n --rate", Layout::Rate, false, false),
        ("-L -n --thresholds", Layout::Thresholds, false, false),
        (
            "-L -n --persistent-conn",
            Layout::PersistentConn,
            false,
            false,
        ),
        ("-L -n --nosort", Layout::Default, true, false),
        // ipvsadm's precedence when two layouts are asked for.
        ("-L -n --rate --stats", Layout::Stats, false, false),
    ] {
        let opts = ListingOptions {
            layout,
            nosort,
            exact,
        };
        let out = sh(&mut lb, line);
        assert_eq!(out.exit_code, 0, "`{line}`");
        assert_eq!(
            out.stdout,
            listing::render(&info, &lb.services, &opts),
            "`{line}`"
        );
    }
    // --nosort shows the dataplane's newest-first order.
    let out = sh(&mut lb, "-L -n --nosort");
    let pos = |a: &str| out.stdout.find(a).expect("listed");
    assert!(pos("192.168.80.13:8080") < pos("192.168.80.11:8080"));
}

#[test]
fn list_one_service_has_no_version_line() {
    let mut lb = article_nat();
    ok(&mut lb, "-A -t 192.168.80.20:443 -s rr");
    let out = sh(&mut lb, "-L -n -t 192.168.80.10:80");
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        out.stdout,
        listing::render_service(
            service(&lb, &tcp("192.168.80.10", 80)),
            &ListingOptions::default()
        )
    );
    assert!(!out.stdout.contains("IP Virtual Server"));
    assert!(!out.stdout.contains("443"));
    fails(&mut lb, "-L -n -t 192.168.80.10:81", "No such service", 1);
}

#[test]
fn help_goes_to_stdout_with_status_zero() {
    let mut lb = FakeLb::default();
    let out = sh(&mut lb, "--help");
    assert_eq!((out.exit_code, out.stderr.as_str()), (0, ""));
    for needle in ["--add-service", "--laddr", "--fullnat", "--tun-type", "wlc"] {
        assert!(out.stdout.contains(needle), "{needle}");
    }
}
