//! Rendering and decoding one PDF page: a generated A4 page with a vector
//! code and a line of text, and the four QR-carrying PDFs of the corpus's
//! phishing messages when the corpus is present. Each iteration runs what
//! the engine runs: `unpack` (parse, layout pass, renders) and the QR reader
//! on every render, with the passes the engine uses.

use std::hint::black_box;
use std::path::Path;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_qr::Pass;
use gatehouse_unpack::{Limits, RenderScope, unpack};

/// Builds a one-page A4 PDF with `payload` drawn as 1.6-point squares.
fn vector_code_pdf(payload: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(payload.as_bytes()).expect("text fits in a QR code");
    let width = code.width();
    let mut content =
        String::from("BT /F1 12 Tf 72 770 Td (Scan to pay your invoice) Tj ET\n0 g\n");
    for (index, color) in code.to_colors().into_iter().enumerate() {
        if color == qrcode::Color::Dark {
            let (row, column) = (index / width, index % width);
            let x = 72.0 + column as f32 * 1.6;
            let y = 600.0 - row as f32 * 1.6;
            content.push_str(&format!("{x} {y} 1.6 1.6 re\n"));
        }
    }
    content.push_str("f\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.7\n");
    let mut offsets = Vec::new();
    for (index, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{body}\nendobj\n", index + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for offset in offsets {
        out.push_str(&format!("{offset:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

/// Takes the first base64 PDF part out of a message, without a MIME parser:
/// the corpus messages have one.
fn pdf_from_eml(eml: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(eml);
    let lower = text.to_ascii_lowercase();
    let header = lower
        .find("application/pdf")
        .or_else(|| lower.find(".pdf\""))?;
    let body_start = lower[header..]
        .find("\n\n")
        .or_else(|| lower[header..].find("\r\n\r\n"))?
        + header;
    let body = &text[body_start..];
    let end = body.find("\n--").unwrap_or(body.len());
    let encoded: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

/// Unpacks one PDF and reads every render, as the engine does.
fn render_and_decode(name: &str, pdf: &[u8], limits: &Limits, qr: &gatehouse_qr::Limits) -> usize {
    let artifact = unpack(name, pdf, limits);
    let mut codes = 0;
    for render in &artifact.renders {
        let passes: &[Pass] = match render.scope {
            RenderScope::Page => &[Pass::Original],
            RenderScope::Region => &[Pass::Original, Pass::Padded, Pass::Inverted],
        };
        if let Ok(decoded) =
            gatehouse_qr::decode_luma_with(&render.luma, render.width, render.height, qr, passes)
        {
            codes += decoded.codes.len();
        }
    }
    codes
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let qr = gatehouse_qr::Limits::default();
    let mut documents = vec![(
        "generated-vector".to_owned(),
        vector_code_pdf("https://pay.example/invoice/7731"),
    )];
    let corpus =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus/phishing_pot/email");
    for sample in ["sample-1977", "sample-3551", "sample-4091", "sample-4580"] {
        let Ok(eml) = std::fs::read(corpus.join(format!("{sample}.eml"))) else {
            continue;
        };
        if let Some(pdf) = pdf_from_eml(&eml) {
            documents.push((sample.to_owned(), pdf));
        }
    }

    let mut group = c.benchmark_group("pdf_page_render_and_decode");
    group.sample_size(10);
    for (name, pdf) in &documents {
        assert_eq!(
            render_and_decode(name, pdf, &limits, &qr),
            1,
            "{name}: one code expected"
        );
        group.bench_function(name.as_str(), |b| {
            b.iter(|| render_and_decode(black_box(name), black_box(pdf), &limits, &qr))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
