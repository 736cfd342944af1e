//! Codes drawn with Unicode block characters (`█ ▀ ▄` and the quadrant blocks),
//! as terminals and tools such as `qrencode -t UTF8` print them.
//!
//! A character cell is about twice as tall as it is wide, so a half block
//! is one square module and one line of half blocks draws two rows of
//! modules. Each character is read as 2 × 2 quarters. When no character in
//! a drawing splits left from right, the two columns of quarters are merged,
//! so that each character is one module wide and each half line one module tall.

use crate::grid::{CellGrid, MAX_GRID_SIDE};

/// Minimum number of block characters on a line that takes part in a drawing.
const MIN_BLOCKS_PER_LINE: usize = 8;
/// Minimum number of lines of a drawing that can draw a code: 21 module rows take 11 lines of half blocks.
const MIN_LINES: usize = 11;
/// Pixels of a square module in the rendering.
const MODULE_PIXELS: u32 = 6;

/// Quarters of a character cell that a block character inks: top-left,
/// top-right, bottom-left, bottom-right. `None` for characters that are not
/// blocks or spaces.
fn quarters(c: char) -> Option<[bool; 4]> {
    Some(match c {
        ' ' | '\u{a0}' | '\u{2800}' => [false; 4],
        '█' | '▓' | '■' => [true; 4],
        '▀' => [true, true, false, false],
        '▄' => [false, false, true, true],
        '▌' => [true, false, true, false],
        '▐' => [false, true, false, true],
        '▖' => [false, false, true, false],
        '▗' => [false, false, false, true],
        '▘' => [true, false, false, false],
        '▝' => [false, true, false, false],
        '▙' => [true, false, true, true],
        '▚' => [true, false, false, true],
        '▛' => [true, true, true, false],
        '▜' => [true, true, false, true],
        '▞' => [false, true, true, false],
        '▟' => [false, true, true, true],
        _ => return None,
    })
}

/// Returns whether a character draws a left half different from its right half.
fn splits_columns(c: char) -> bool {
    matches!(
        c,
        '▌' | '▐' | '▖' | '▗' | '▘' | '▝' | '▙' | '▚' | '▛' | '▜' | '▞' | '▟'
    )
}

fn is_block(c: char) -> bool {
    c != ' ' && c != '\u{a0}' && c != '\u{2800}' && quarters(c).is_some()
}

/// Checks cheaply whether text holds any block character (U+2580 to U+259F or ■).
pub fn has_block_characters(text: &str) -> bool {
    // In UTF-8 the block elements are E2 96 80 to E2 96 9F, and ■ is E2 96 A0.
    memchr::memmem::find_iter(text.as_bytes(), b"\xE2\x96").any(|index| {
        text.as_bytes()
            .get(index + 2)
            .is_some_and(|&byte| (0x80..=0xA0).contains(&byte))
    })
}

/// Finds the drawings of block characters in `lines` and returns each as a grid.
///
/// With `skip_blank_lines` (for text taken from HTML, where markup leaves
/// empty lines between drawn ones) a blank line does not end a drawing.
pub fn block_grids<'a>(
    lines: impl Iterator<Item = &'a str>,
    skip_blank_lines: bool,
) -> Vec<CellGrid> {
    let mut grids = Vec::new();
    let mut drawing: Vec<&str> = Vec::new();
    for line in lines {
        let line = line.trim_end();
        if line.trim().is_empty() && skip_blank_lines {
            continue;
        }
        let blocks = line.chars().filter(|&c| is_block(c)).count();
        let only_blocks = line.trim_start().chars().all(|c| quarters(c).is_some());
        if blocks >= MIN_BLOCKS_PER_LINE && only_blocks {
            drawing.push(line);
            continue;
        }
        if let Some(grid) = grid_of(&drawing) {
            grids.push(grid);
        }
        drawing.clear();
    }
    if let Some(grid) = grid_of(&drawing) {
        grids.push(grid);
    }
    grids
}

fn grid_of(lines: &[&str]) -> Option<CellGrid> {
    if lines.len() < MIN_LINES || lines.len() * 2 > MAX_GRID_SIDE {
        return None;
    }
    let indent = lines
        .iter()
        .map(|line| line.chars().take_while(|&c| !is_block(c)).count())
        .min()
        .unwrap_or(0);
    let rows_of_chars: Vec<Vec<[bool; 4]>> = lines
        .iter()
        .map(|line| line.chars().skip(indent).filter_map(quarters).collect())
        .collect();
    let characters = rows_of_chars.iter().map(Vec::len).max().unwrap_or(0);
    let split = lines.iter().any(|line| line.chars().any(splits_columns));
    let columns = if split { characters * 2 } else { characters };
    if columns > MAX_GRID_SIDE {
        return None;
    }

    let rows = lines.len() * 2;
    let mut dark = vec![false; columns * rows];
    for (line_index, cells) in rows_of_chars.iter().enumerate() {
        for (char_index, quarter) in cells.iter().enumerate() {
            for (half_row, pair) in [[quarter[0], quarter[1]], [quarter[2], quarter[3]]]
                .iter()
                .enumerate()
            {
                let row = line_index * 2 + half_row;
                if split {
                    dark[row * columns + char_index * 2] = pair[0];
                    dark[row * columns + char_index * 2 + 1] = pair[1];
                } else {
                    dark[row * columns + char_index] = pair[0] || pair[1];
                }
            }
        }
    }
    // A quarter is half as wide as a character and half as tall, so it is
    // twice as tall as it is wide. An unsplit half block is square.
    let (cell_width, cell_height) = if split {
        (MODULE_PIXELS / 2, MODULE_PIXELS)
    } else {
        (MODULE_PIXELS, MODULE_PIXELS)
    };
    Some(CellGrid {
        columns,
        rows,
        dark,
        cell_width,
        cell_height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    /// Draws a code with half blocks, two module rows a line, as `qrencode -t UTF8` does.
    fn half_blocks(code: &qrcode::QrCode) -> String {
        let width = code.width();
        let dark = |x: usize, y: usize| y < width && code[(x, y)] == qrcode::Color::Dark;
        let mut text = String::new();
        for y in (0..width).step_by(2) {
            text.push_str("    ");
            for x in 0..width {
                text.push(match (dark(x, y), dark(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn half_block_code_decodes() {
        let code = qrcode::QrCode::new(b"https://blocks.example/").expect("encodable");
        let text = half_blocks(&code);
        assert!(has_block_characters(&text));
        let grids = block_grids(text.lines(), false);
        assert_eq!(grids.len(), 1);
        let codes = grids[0].decode(&Limits::default());
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].payload, "https://blocks.example/");
    }

    #[test]
    fn decorative_banner_gives_no_code() {
        let banner = "█▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀█\n".to_owned()
            + &"█  ▄▄▄  SPRING SALE  ▄▄▄  █\n".repeat(3)
            + &"█ ▄▀▀▀▄ ▄▀▀▀▄ ▄▀▀▀▄ ▄▀▀▀▄ █\n".repeat(12)
            + "█▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄▄█\n";
        let codes: Vec<_> = block_grids(banner.lines(), false)
            .iter()
            .flat_map(|grid| grid.decode(&Limits::default()))
            .collect();
        assert!(codes.is_empty(), "{codes:?}");
    }

    #[test]
    fn plain_text_has_no_blocks() {
        assert!(!has_block_characters("Hello — “quoted” → arrows ✓"));
    }
}
