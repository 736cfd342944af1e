//! Link extraction from text and HTML, host normalisation, redirector
//! unwrapping and addresses embedded in URLs.

use gatehouse_message::Limits;
use gatehouse_message::links::{
    AddressEncoding, Link, LinkSource, extract_html, extract_html_with, extract_text,
    extract_text_with, find_embedded_address,
};

fn urls(links: &[Link]) -> Vec<&str> {
    links.iter().map(|link| link.url.as_str()).collect()
}

#[test]
fn text_urls_and_www_hosts() {
    let text = "Visit https://Example.COM/path, or www.test.example.org. Mail me at a@b.example; see file.txt";
    let links = extract_text(text, "body");
    assert_eq!(
        urls(&links),
        ["https://example.com/path", "http://www.test.example.org/"]
    );
    let domains: Vec<&str> = links.iter().map(|l| l.domain.as_str()).collect();
    assert_eq!(domains, ["example.com", "example.org"]);
    assert!(
        links
            .iter()
            .all(|l| l.source == LinkSource::Text && l.location == "body")
    );
}

#[test]
fn hosts_normalised_before_domain() {
    let cases = [
        ("http://3232235777/login", "192.168.1.1", "192.168.1.1"),
        ("http://0xC0.0250.1.1/", "192.168.1.1", "192.168.1.1"),
        ("http://EXAMPLE.com./x", "example.com", "example.com"),
        (
            "https://a.b.Example.co.uk/",
            "a.b.example.co.uk",
            "example.co.uk",
        ),
        (
            "https://раураl.com/",
            "xn--l-7sba6dbr.com",
            "xn--l-7sba6dbr.com",
        ),
        (
            "https://[::ffff:7f00:1]/",
            "::ffff:127.0.0.1",
            "::ffff:127.0.0.1",
        ),
    ];
    for (url, host, domain) in cases {
        let link = Link::new(url, LinkSource::Qr, "image.png");
        assert_eq!(
            link.as_ref().map(|l| l.host.as_str()),
            Some(host),
            "host of {url}"
        );
        assert_eq!(
            link.as_ref().map(|l| l.domain.as_str()),
            Some(domain),
            "domain of {url}"
        );
    }
}

#[test]
fn ip_hosts_are_flagged() {
    let ip = Link::new("http://2130706433/", LinkSource::Text, "body");
    assert_eq!(ip.map(|l| l.host_is_ip()), Some(true));
    let name = Link::new("http://example.com/", LinkSource::Text, "body");
    assert_eq!(name.map(|l| l.host_is_ip()), Some(false));
}

#[test]
fn urls_without_host_are_not_links() {
    for url in [
        "mailto:a@example.com",
        "javascript:void(0)",
        "cid:part1",
        "data:image/png;base64,AA",
        "/relative/path",
        "",
    ] {
        assert_eq!(
            Link::new(url, LinkSource::Html, "body"),
            None,
            "url {url:?}"
        );
    }
}

#[test]
fn html_attributes_and_css() {
    let html = r#"<html><head>
<style>.a { background: url('https://css.example/bg.png') }</style>
<meta http-equiv="refresh" content="0; URL=https://refresh.example/">
</head><body background="https://background.example/b.jpg">
<a href="https://href.example/a">link</a>
<img src="https://src.example/i.png" srcset="https://srcset.example/1x.png 1x, https://srcset.example/2x.png 2x">
<form action="https://action.example/post"><button formaction="https://formaction.example/p">go</button></form>
<div style="background-image:url(&quot;https://style.example/s.png&quot;)">x</div>
<a href="javascript:alert(1)">js</a> <a href="mailto:a@example.com">mail</a> <a href="/relative">rel</a>
<p>Or paste https://text.example/t into your browser.</p>
</body></html>"#;
    let links = extract_html(html, "body");
    let mut found = urls(&links);
    found.sort_unstable();
    let mut expected = [
        "https://css.example/bg.png",
        "https://refresh.example/",
        "https://background.example/b.jpg",
        "https://href.example/a",
        "https://src.example/i.png",
        "https://srcset.example/1x.png",
        "https://srcset.example/2x.png",
        "https://action.example/post",
        "https://formaction.example/p",
        "https://style.example/s.png",
        "https://text.example/t",
    ];
    expected.sort_unstable();
    assert_eq!(found, expected);
    assert!(links.iter().all(|l| l.source == LinkSource::Html));
}

#[test]
fn base_href_resolves_relative_urls() {
    let html = r#"<head><base href="https://base.example/dir/"></head><body><a href="login.php?x=1">a</a><img src="/logo.png"></body>"#;
    let links = extract_html(html, "body");
    assert_eq!(
        urls(&links),
        [
            "https://base.example/dir/login.php?x=1",
            "https://base.example/logo.png"
        ]
    );
}

#[test]
fn entity_encoded_href() {
    let html = r#"<a href="&#104;ttps&#58;//obfuscated.example/?a=1&amp;b=2">x</a>"#;
    let links = extract_html(html, "body");
    assert_eq!(urls(&links), ["https://obfuscated.example/?a=1&b=2"]);
}

#[test]
fn anchor_text_showing_another_host() {
    let html = r#"<a href="https://evil.example/login">https://www.paypal.com/signin</a>
<a href="https://secure.bank.example/x">bank.example</a>
<a href="https://tracker.example/y">Click here</a>
<a href="https://other.example/z"><b>www.</b><i>microsoft.com</i></a>"#;
    let links = extract_html(html, "body");
    let shown: Vec<(&str, Option<&str>)> = links
        .iter()
        .filter(|l| {
            l.url.contains("evil")
                || l.url.contains("bank")
                || l.url.contains("tracker")
                || l.url.contains("other")
        })
        .map(|l| (l.domain.as_str(), l.shown_host.as_deref()))
        .collect();
    assert_eq!(
        shown,
        [
            ("evil.example", Some("www.paypal.com")),
            ("bank.example", None),
            ("tracker.example", None),
            ("other.example", Some("www.microsoft.com")),
        ]
    );
}

#[test]
fn redirectors_are_unwrapped() {
    let text = "https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fwww.google.com%2Furl%3Fq%3Dhttps%253A%252F%252Fphish.example%252Flogin&data=05";
    let links = extract_text(text, "body");
    let found: Vec<(&str, Option<&str>)> = links
        .iter()
        .map(|l| {
            (
                l.domain.as_str(),
                l.unwrapped_from.as_deref().map(|u| &u[..20]),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("outlook.com", None),
            ("google.com", Some("https://nam02.safeli")),
            ("phish.example", Some("https://www.google.c")),
        ]
    );
    assert_eq!(links[2].url, "https://phish.example/login");
}

#[test]
fn redirect_depth_is_limited() {
    let limits = Limits {
        max_redirect_depth: 1,
        ..Limits::default()
    };
    let text = "https://www.google.com/url?q=https://www.google.com/url?q%3Dhttps://deep.example/";
    let links = extract_text_with(text, "body", &limits);
    let domains: Vec<&str> = links.iter().map(|l| l.domain.as_str()).collect();
    assert_eq!(domains, ["google.com", "google.com"]);
}

#[test]
fn proofpoint_and_bing_in_html() {
    let html = r#"<a href="https://urldefense.proofpoint.com/v2/url?u=https-3A__pp.example_a&amp;d=x">a</a>
<a href="https://www.bing.com/ck/a?!&amp;&amp;p=1&amp;u=a1aHR0cHM6Ly9iaW5nLXRhcmdldC5leGFtcGxlLw&amp;ntb=1">b</a>"#;
    let links = extract_html(html, "body");
    let domains: Vec<&str> = links.iter().map(|l| l.domain.as_str()).collect();
    assert_eq!(
        domains,
        [
            "proofpoint.com",
            "pp.example",
            "bing.com",
            "bing-target.example"
        ]
    );
}

#[test]
fn links_are_capped_and_deduplicated() {
    let limits = Limits {
        max_links: 10,
        ..Limits::default()
    };
    let mut text = String::new();
    for index in 0..50 {
        text.push_str(&format!(
            "https://host{index}.example/ https://host{index}.example/ "
        ));
    }
    let links = extract_text_with(&text, "body", &limits);
    assert_eq!(links.len(), 10);
    assert_eq!(links[1].url, "https://host1.example/");
}

#[test]
fn deeply_nested_html_is_read() {
    let mut html = String::new();
    for _ in 0..50_000 {
        html.push_str("<div>");
    }
    html.push_str(r#"<a href="https://deep.example/">x</a>"#);
    let links = extract_html_with(&html, "body", &Limits::default());
    assert_eq!(urls(&links), ["https://deep.example/"]);
}

#[test]
fn unbalanced_html_is_read() {
    let html = r#"<a href="https://one.example/">one <a href="https://two.example/">two</a></b></table><script>var u = "https://script.example/x";</script><a href='https://three.example/'"#;
    let links = extract_html(html, "body");
    let mut found = urls(&links);
    found.sort_unstable();
    assert_eq!(
        found,
        [
            "https://one.example/",
            "https://script.example/x",
            "https://two.example/"
        ]
    );
}

#[test]
fn embedded_address_in_public_api() {
    let url = "https://kit.example/#dmljdGltQGV4YW1wbGUuY29t";
    assert_eq!(
        find_embedded_address(url, "victim@example.com"),
        Some(AddressEncoding::Base64)
    );
    assert_eq!(find_embedded_address(url, "other@example.com"), None);
}
