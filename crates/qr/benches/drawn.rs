//! Codes drawn without an image: an HTML table code (detection, grid and
//! decode), and the check that an ordinary HTML newsletter pays for.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

const URL: &str = "https://login.example-bank.bond/verify?id=7731";

/// Builds an HTML body with the code as a table of 4-pixel cells, one per module.
fn table_html() -> String {
    let code = qrcode::QrCode::new(URL.as_bytes()).expect("text fits in a QR code");
    let width = code.width();
    let mut html = String::from(
        "<html><body><p>Scan to verify your account.</p><table cellspacing=0 cellpadding=0>",
    );
    for row in code.to_colors().chunks(width) {
        html.push_str("<tr>");
        for color in row {
            let colour = if *color == qrcode::Color::Dark {
                "#000"
            } else {
                "#fff"
            };
            html.push_str(&format!("<td bgcolor=\"{colour}\" width=4 height=4></td>"));
        }
        html.push_str("</tr>");
    }
    html.push_str("</table></body></html>");
    html
}

/// Builds a newsletter-sized HTML body with a layout table, links and images, and no code.
fn newsletter_html() -> String {
    let mut html = String::from("<html><body><table width=600>");
    for index in 0..40 {
        html.push_str(&format!(
            "<tr><td><img src=\"https://cdn.example/{index}.png\"></td><td><a href=\"https://shop.example/item/{index}\">Item {index}</a> — spring offer</td></tr>"
        ));
    }
    html.push_str("</table></body></html>");
    html
}

fn decode_drawn(html: &str, limits: &gatehouse_qr::Limits) -> usize {
    if !gatehouse_qr::may_draw_code(html) {
        return 0;
    }
    let drawings = gatehouse_qr::drawings(html);
    drawings
        .grids
        .iter()
        .chain(&drawings.block_grids)
        .map(|grid| grid.decode(limits).len())
        .sum()
}

fn bench(c: &mut Criterion) {
    let limits = gatehouse_qr::Limits::default();
    let table = table_html();
    let newsletter = newsletter_html();
    assert_eq!(decode_drawn(&table, &limits), 1);
    assert_eq!(decode_drawn(&newsletter, &limits), 0);
    c.bench_function("html_table_code", |b| {
        b.iter(|| decode_drawn(black_box(&table), &limits))
    });
    c.bench_function("html_newsletter_without_code", |b| {
        b.iter(|| decode_drawn(black_box(&newsletter), &limits))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
