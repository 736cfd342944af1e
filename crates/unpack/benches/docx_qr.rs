//! Unpacking a DOCX whose page header carries a QR image, then decoding
//! that image: the attachment work for one QR-phishing message.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "../tests/support/mod.rs"]
mod support;

fn docx_with_qr(c: &mut Criterion) {
    let docx = support::docx_with_header_qr();
    let unpack_limits = gatehouse_unpack::Limits::default();
    let qr_limits = gatehouse_qr::Limits::default();

    c.bench_function("unpack_docx_with_qr", |b| {
        b.iter(|| gatehouse_unpack::unpack("invoice.docx", black_box(&docx), &unpack_limits))
    });

    c.bench_function("unpack_and_decode_docx_with_qr", |b| {
        b.iter(|| {
            let artifact =
                gatehouse_unpack::unpack("invoice.docx", black_box(&docx), &unpack_limits);
            let mut payloads = Vec::new();
            for nested in artifact
                .walk()
                .filter(|nested| !nested.image_data.is_empty())
            {
                if let Ok(codes) = gatehouse_qr::decode(&nested.image_data, &qr_limits) {
                    payloads.extend(codes.into_iter().map(|code| code.payload));
                }
            }
            assert_eq!(payloads, [support::QR_URL]);
            payloads
        })
    });
}

criterion_group!(benches, docx_with_qr);
criterion_main!(benches);
