//! Codes drawn without an image: a grid of cells, each dark or light,
//! rebuilt from HTML table cells or Unicode block characters and rendered
//! into pixels for the reader.

use crate::passes::{self, Pixels};
use crate::{Limits, Pass, QrCode};

/// Most cells on one side of a grid that is rendered: version 40 is 177
/// modules, and a character or table cell may hold half a module.
pub const MAX_GRID_SIDE: usize = 400;

/// Light cells rendered around the grid, as the quiet zone a reader expects.
const QUIET_CELLS: usize = 4;

/// Passes tried on a rendered grid: the grid is sharp, so only a missing
/// quiet zone inside the drawing can still stop the reader.
const GRID_PASSES: [Pass; 2] = [Pass::Original, Pass::Padded];

/// A code drawn as a grid of cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellGrid {
    pub columns: usize,
    pub rows: usize,
    /// Row by row, `true` for a dark (inked) cell.
    pub dark: Vec<bool>,
    /// Width of a cell in the rendering, in pixels.
    pub cell_width: u32,
    /// Height of a cell in the rendering, in pixels.
    pub cell_height: u32,
}

impl CellGrid {
    /// Returns whether the grid has the size and mix of cells that a code
    /// needs. That is at least 21 × 21 cells and at most [`MAX_GRID_SIDE`] a
    /// side, with 20% to 80% of them dark, because a code's data is masked
    /// to about half dark.
    pub fn may_hold_code(&self) -> bool {
        let sides_fit = (21..=MAX_GRID_SIDE).contains(&self.columns)
            && (11..=MAX_GRID_SIDE).contains(&self.rows);
        if !sides_fit || self.dark.len() != self.columns * self.rows {
            return false;
        }
        let dark = self.dark.iter().filter(|&&dark| dark).count();
        let share = dark as f64 / self.dark.len() as f64;
        (0.2..=0.8).contains(&share)
    }

    /// Renders the grid with inked cells black, and again with inked cells
    /// white (for codes drawn light-on-dark), each inside a white quiet zone,
    /// and returns the symbols the reader finds.
    pub fn decode(&self, limits: &Limits) -> Vec<QrCode> {
        if !self.may_hold_code() {
            return Vec::new();
        }
        for inked_dark in [true, false] {
            let (luma, width, height) = self.render(inked_dark);
            if u64::from(width) * u64::from(height) > limits.max_pixels {
                return Vec::new();
            }
            let pixels = Pixels::from_luma(luma, width, height);
            let decoded = passes::run_passes(&pixels, limits, &GRID_PASSES);
            if !decoded.codes.is_empty() {
                return decoded.codes;
            }
        }
        Vec::new()
    }

    fn render(&self, inked_dark: bool) -> (Vec<u8>, u32, u32) {
        let cell_width = self.cell_width.max(1) as usize;
        let cell_height = self.cell_height.max(1) as usize;
        let width = (self.columns + 2 * QUIET_CELLS) * cell_width;
        let height = (self.rows + 2 * QUIET_CELLS) * cell_height;
        let mut luma = vec![255u8; width * height];
        let ink = if inked_dark { 0 } else { 255 };
        let paper = 255 - ink;
        for row in 0..self.rows {
            for column in 0..self.columns {
                let value = if self.dark[row * self.columns + column] {
                    ink
                } else {
                    paper
                };
                let top = (row + QUIET_CELLS) * cell_height;
                let left = (column + QUIET_CELLS) * cell_width;
                for y in top..top + cell_height {
                    luma[y * width + left..y * width + left + cell_width].fill(value);
                }
            }
        }
        (luma, width as u32, height as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid_of(code: &qrcode::QrCode) -> CellGrid {
        let width = code.width();
        CellGrid {
            columns: width,
            rows: width,
            dark: code
                .to_colors()
                .into_iter()
                .map(|color| color == qrcode::Color::Dark)
                .collect(),
            cell_width: 4,
            cell_height: 4,
        }
    }

    #[test]
    fn grid_of_a_code_decodes() {
        let code = qrcode::QrCode::new(b"https://grid.example/").expect("encodable");
        let codes = grid_of(&code).decode(&Limits::default());
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].payload, "https://grid.example/");
    }

    #[test]
    fn inverted_grid_decodes() {
        let code = qrcode::QrCode::new(b"https://inverted.example/").expect("encodable");
        let mut grid = grid_of(&code);
        grid.dark.iter_mut().for_each(|dark| *dark = !*dark);
        let codes = grid.decode(&Limits::default());
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].payload, "https://inverted.example/");
    }

    #[test]
    fn checkerboard_is_no_code() {
        let dark = (0..30 * 30)
            .map(|index| (index / 30 + index % 30) % 2 == 0)
            .collect();
        let grid = CellGrid {
            columns: 30,
            rows: 30,
            dark,
            cell_width: 4,
            cell_height: 4,
        };
        assert!(grid.decode(&Limits::default()).is_empty());
    }
}
