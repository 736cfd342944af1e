//! One code cut into several images, put back together.
//!
//! Mail can show a code as two or four images placed edge to edge, so that
//! no single image contains a readable symbol. The pieces are joined in the
//! layout the HTML gives them: each row left to right with the bottoms lined
//! up (inline images sit on the text baseline), rows top to bottom.

use crate::passes::{self, Pixels};
use crate::{Decoded, Limits, QrError, load};

/// Joins the images of `rows` (encoded bytes) and decodes the result.
pub fn decode_stitched(rows: &[Vec<&[u8]>], limits: &Limits) -> Result<Decoded, QrError> {
    crate::guarded(|| {
        let mut pieces: Vec<Vec<image::GrayImage>> = Vec::with_capacity(rows.len());
        for row in rows {
            let mut decoded_row = Vec::with_capacity(row.len());
            for data in row {
                decoded_row.push(load::load(data, limits)?.to_luma8());
            }
            pieces.push(decoded_row);
        }

        let row_sizes: Vec<(u32, u32)> = pieces
            .iter()
            .map(|row| {
                let width = row.iter().map(image::GrayImage::width).sum::<u32>();
                let height = row.iter().map(image::GrayImage::height).max().unwrap_or(0);
                (width, height)
            })
            .collect();
        let width = row_sizes.iter().map(|size| size.0).max().unwrap_or(0);
        let height = row_sizes.iter().map(|size| size.1).sum::<u32>();
        if u64::from(width) * u64::from(height) > limits.max_pixels {
            return Err(QrError::TooManyPixels {
                width,
                height,
                max_pixels: limits.max_pixels,
            });
        }

        let mut luma = vec![255u8; width as usize * height as usize];
        let mut top = 0u32;
        for (row, (_, row_height)) in pieces.iter().zip(&row_sizes) {
            let mut left = 0u32;
            for piece in row {
                let offset = top + row_height - piece.height();
                for (y, line) in piece
                    .as_raw()
                    .chunks_exact(piece.width() as usize)
                    .enumerate()
                {
                    let start = (offset as usize + y) * width as usize + left as usize;
                    luma[start..start + line.len()].copy_from_slice(line);
                }
                left += piece.width();
            }
            top += row_height;
        }
        let pixels = Pixels::from_luma(luma, width, height);
        Ok(passes::run(&pixels, limits))
    })
}
