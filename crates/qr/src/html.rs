//! Codes that HTML draws without one image: table cells or CSS grid items
//! coloured dark and light, block characters in the text, and one code cut
//! into several images laid side by side.
//!
//! A small tokenizer reads the tags in one linear pass; no tree is built.
//! The callers check cheaply first ([`may_draw_code`]) so that mail without
//! such structures costs a few memory scans.

use std::collections::HashMap;

use crate::blocks;
use crate::grid::{CellGrid, MAX_GRID_SIDE};

/// Fewest `<td` tags that a table drawing a code needs: 21 rows of one cell
/// each already hold a version 1 code when its runs are merged with colspan.
const MIN_TABLE_CELLS: usize = 21;
/// Pixels of one cell in the rendering of a table or CSS grid.
const CELL_PIXELS: u32 = 4;
/// Most tags read from one document.
const MAX_TAGS: usize = 500_000;
/// Most cells kept for one table or grid.
const MAX_CELLS: usize = MAX_GRID_SIDE * MAX_GRID_SIDE;

/// Images laid out next to each other with nothing between them: rows of
/// image sources, each row left to right, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMosaic {
    pub rows: Vec<Vec<String>>,
}

/// Everything one HTML document draws that may be a code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HtmlDrawings {
    /// Tables and CSS grids of two-valued cells.
    pub grids: Vec<CellGrid>,
    /// Drawings of block characters in the text.
    pub block_grids: Vec<CellGrid>,
    /// Groups of two or more neighbouring images.
    pub mosaics: Vec<ImageMosaic>,
}

/// Checks cheaply whether HTML may draw a code without an image: enough
/// table cells that set a colour or a class, a CSS grid, block characters,
/// their entities, or two images carried in the message (`cid:` or
/// `data:`). Remote images are never fetched, so they cannot be joined and
/// do not count.
pub fn may_draw_code(html: &str) -> bool {
    let bytes = html.as_bytes();
    let count = |needle: &[u8]| memchr::memmem::find_iter(bytes, needle).count();
    let cells = count(b"<td") + count(b"<TD");
    let coloured =
        || count(b"bgcolor") + count(b"BGCOLOR") + count(b"background") + count(b"class=");
    (cells >= MIN_TABLE_CELLS && coloured() >= MIN_TABLE_CELLS)
        || memchr::memmem::find(bytes, b"grid-template-columns").is_some()
        || blocks::has_block_characters(html)
        || has_block_entities(bytes)
        || count(b"cid:") + count(b"CID:") + count(b"data:image/") >= 2
}

/// Finds the entities of block characters: `&#9600;`–`&#9631;`, `&#x2580;`–`&#x259F;`,
/// `&block;`, `&uhblk;`, `&lhblk;`.
fn has_block_entities(bytes: &[u8]) -> bool {
    [
        "&#96", "&#x258", "&#x259", "&#X258", "&#X259", "&block;", "&uhblk;", "&lhblk;",
    ]
    .iter()
    .any(|needle| memchr::memmem::find(bytes, needle.as_bytes()).is_some())
}

/// Reads the tables, CSS grids, block drawings and image groups of one document.
pub fn drawings(html: &str) -> HtmlDrawings {
    let mut reader = Reader::new(html);
    let mut state = State::default();
    let mut tags = 0;
    while let Some(token) = reader.next() {
        tags += 1;
        if tags > MAX_TAGS {
            break;
        }
        state.token(token);
    }
    state.finish_flow_mosaic();
    let lines = state.text;
    HtmlDrawings {
        grids: state.grids,
        block_grids: blocks::block_grids(lines.lines(), true),
        mosaics: state.mosaics,
    }
}

enum Token<'a> {
    Start {
        name: String,
        attributes: Vec<(String, String)>,
    },
    End {
        name: String,
    },
    Text(&'a str),
    /// The content of a `<style>` element.
    Style(&'a str),
}

/// A linear tokenizer over tags, text and style sheets. Comments and scripts are skipped.
struct Reader<'a> {
    html: &'a str,
    position: usize,
}

impl<'a> Reader<'a> {
    fn new(html: &'a str) -> Reader<'a> {
        Reader { html, position: 0 }
    }

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = &self.html[self.position..];
        if rest.is_empty() {
            return None;
        }
        if !rest.starts_with('<') {
            let end = rest.find('<').unwrap_or(rest.len());
            self.position += end;
            return Some(Token::Text(&rest[..end]));
        }
        if rest.starts_with("<!--") {
            let end = rest.find("-->").map_or(rest.len(), |found| found + 3);
            self.position += end;
            return Some(Token::Text(""));
        }
        let Some(close) = tag_end(rest) else {
            self.position = self.html.len();
            return None;
        };
        let tag = &rest[1..close];
        self.position += close + 1;
        if let Some(name) = tag.strip_prefix('/') {
            return Some(Token::End {
                name: name.trim().to_ascii_lowercase(),
            });
        }
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(tag.len());
        let name = tag[..name_end].to_ascii_lowercase();
        if name == "script" || name == "style" {
            let after = &self.html[self.position..];
            let closing = format!("</{name}");
            let end = find_ignore_case(after, &closing).unwrap_or(after.len());
            self.position += end;
            if name == "style" {
                return Some(Token::Style(&after[..end]));
            }
            return Some(Token::Text(""));
        }
        Some(Token::Start {
            name,
            attributes: attributes(&tag[name_end..]),
        })
    }
}

/// Returns the index of the `>` that ends the tag at the start of `text`, outside quotes.
fn tag_end(text: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    for (index, c) in text.char_indices().skip(1) {
        match quote {
            Some(open) if c == open => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '>' => return Some(index),
            None => {}
        }
    }
    None
}

fn find_ignore_case(haystack: &str, needle: &str) -> Option<usize> {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

/// Parses `name="value" name='value' name=value name` into lower-case names and raw values.
fn attributes(text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut rest = text.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let name = rest[..name_end].to_ascii_lowercase();
        rest = rest[name_end..].trim_start();
        let mut value = String::new();
        if let Some(after) = rest.strip_prefix('=') {
            let after = after.trim_start();
            if let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'') {
                let body = &after[1..];
                let end = body.find(quote).unwrap_or(body.len());
                value = body[..end].to_owned();
                rest = body.get(end + 1..).unwrap_or("");
            } else {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                value = after[..end].to_owned();
                rest = &after[end..];
            }
        }
        if !name.is_empty() {
            found.push((name, value));
        }
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    }
    found
}

fn attribute<'v>(attributes: &'v [(String, String)], name: &str) -> Option<&'v str> {
    attributes
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Elements that never have content, so they open no nesting level.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose start or end breaks a line of text.
const BLOCK: [&str; 16] = [
    "p",
    "div",
    "br",
    "tr",
    "li",
    "pre",
    "table",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "blockquote",
];

#[derive(Default)]
struct Table {
    rows: Vec<Vec<TableCell>>,
    background: Option<u8>,
    row_background: Option<u8>,
    cells: usize,
}

struct TableCell {
    /// Luma of the cell's colour, `None` when it shows the page through.
    luma: Option<u8>,
    span: usize,
    images: Vec<String>,
    has_text: bool,
}

struct CssGrid {
    depth: usize,
    columns: usize,
    cells: Vec<Option<u8>>,
}

#[derive(Default)]
struct State {
    classes: HashMap<String, String>,
    tables: Vec<Table>,
    css_grids: Vec<CssGrid>,
    depth: usize,
    grids: Vec<CellGrid>,
    mosaics: Vec<ImageMosaic>,
    /// Images shown in the text flow since the last break: lines of sources.
    flow: Vec<Vec<String>>,
    /// Visible text with line breaks, for block drawings.
    text: String,
    in_pre: bool,
}

impl State {
    fn token(&mut self, token: Token<'_>) {
        match token {
            Token::Style(css) => self.style_sheet(css),
            Token::Text(text) => self.text(text),
            Token::Start { name, attributes } => self.start(&name, &attributes),
            Token::End { name } => self.end(&name),
        }
    }

    fn style_sheet(&mut self, css: &str) {
        for rule in css.split('}') {
            let Some((selectors, declarations)) = rule.split_once('{') else {
                continue;
            };
            for selector in selectors.split(',') {
                let Some((_, class)) = selector.trim().rsplit_once('.') else {
                    continue;
                };
                let class: String = class
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !class.is_empty() {
                    let entry = self.classes.entry(class).or_default();
                    entry.push(';');
                    entry.push_str(declarations);
                }
            }
        }
    }

    fn text(&mut self, raw: &str) {
        if raw.is_empty() {
            return;
        }
        let decoded = decode_entities(raw);
        let visible = !decoded.trim().is_empty();
        if visible {
            self.finish_flow_mosaic();
            if let Some(cell) = self.open_cell() {
                cell.has_text = true;
            }
        }
        if self.text.len() < 4 * 1024 * 1024 {
            if self.in_pre {
                self.text.push_str(&decoded);
            } else {
                // Outside <pre>, a line break in the source is a space.
                self.text.extend(
                    decoded
                        .chars()
                        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
                );
            }
        }
    }

    fn open_cell(&mut self) -> Option<&mut TableCell> {
        self.tables.last_mut()?.rows.last_mut()?.last_mut()
    }

    /// Collects the declarations that apply to an element: its classes, then its `style`.
    fn declarations(&self, attributes: &[(String, String)]) -> String {
        let mut declarations = String::new();
        if let Some(classes) = attribute(attributes, "class") {
            for class in classes.split_whitespace() {
                if let Some(rules) = self.classes.get(class) {
                    declarations.push_str(rules);
                    declarations.push(';');
                }
            }
        }
        if let Some(style) = attribute(attributes, "style") {
            declarations.push_str(style);
        }
        declarations
    }

    fn colour(&self, attributes: &[(String, String)]) -> Option<u8> {
        let declared = background_luma(&self.declarations(attributes));
        declared.or_else(|| attribute(attributes, "bgcolor").and_then(colour_luma))
    }

    fn start(&mut self, name: &str, attributes: &[(String, String)]) {
        if BLOCK.contains(&name) {
            self.text.push('\n');
        }
        if name == "pre" {
            self.in_pre = true;
        }

        // A child of a CSS grid container is one cell.
        let colour = self.colour(attributes);
        if let Some(grid) = self.css_grids.last_mut()
            && self.depth == grid.depth
            && grid.cells.len() < MAX_CELLS
        {
            grid.cells.push(colour);
        }

        match name {
            "table" => {
                self.finish_flow_mosaic();
                self.tables.push(Table {
                    background: colour,
                    ..Table::default()
                });
            }
            "tr" => {
                if let Some(table) = self.tables.last_mut() {
                    table.row_background = colour.or(table.background);
                    table.rows.push(Vec::new());
                }
            }
            "td" | "th" => {
                self.finish_flow_mosaic();
                let span = attribute(attributes, "colspan")
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(1)
                    .clamp(1, MAX_GRID_SIDE);
                if let Some(table) = self.tables.last_mut()
                    && table.cells < MAX_CELLS
                {
                    let luma = colour.or(table.row_background);
                    if table.rows.is_empty() {
                        table.rows.push(Vec::new());
                    }
                    if let Some(row) = table.rows.last_mut() {
                        row.push(TableCell {
                            luma,
                            span,
                            images: Vec::new(),
                            has_text: false,
                        });
                    }
                    table.cells += 1;
                }
            }
            "img" => {
                let source = attribute(attributes, "src").unwrap_or("").trim().to_owned();
                if let Some(cell) = self.open_cell() {
                    cell.images.push(source);
                } else {
                    match self.flow.last_mut() {
                        Some(line) => line.push(source),
                        None => self.flow.push(vec![source]),
                    }
                }
            }
            "br" if self.open_cell().is_none() => match self.flow.last() {
                // A second break in a row leaves a gap: the group ends.
                Some(line) if line.is_empty() => self.finish_flow_mosaic(),
                Some(_) => self.flow.push(Vec::new()),
                None => {}
            },
            _ if BLOCK.contains(&name) => self.finish_flow_mosaic(),
            _ => {}
        }

        if !VOID.contains(&name) {
            self.depth += 1;
            let declarations = self.declarations(attributes);
            if let Some(columns) = grid_columns(&declarations) {
                self.css_grids.push(CssGrid {
                    depth: self.depth,
                    columns,
                    cells: Vec::new(),
                });
            }
        }
    }

    fn end(&mut self, name: &str) {
        if BLOCK.contains(&name) {
            self.text.push('\n');
            self.finish_flow_mosaic();
        }
        if name == "pre" {
            self.in_pre = false;
        }
        if name == "table"
            && let Some(table) = self.tables.pop()
        {
            self.finish_table(table);
        }
        if VOID.contains(&name) {
            return;
        }
        if let Some(grid) = self.css_grids.last()
            && grid.depth == self.depth
            && let Some(grid) = self.css_grids.pop()
        {
            self.finish_css_grid(grid);
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn finish_flow_mosaic(&mut self) {
        let rows: Vec<Vec<String>> = std::mem::take(&mut self.flow)
            .into_iter()
            .filter(|row| !row.is_empty())
            .collect();
        if rows.iter().map(Vec::len).sum::<usize>() >= 2 {
            self.mosaics.push(ImageMosaic { rows });
        }
    }

    fn finish_table(&mut self, table: Table) {
        let rows: Vec<&Vec<TableCell>> = table.rows.iter().filter(|row| !row.is_empty()).collect();

        // A table whose every cell contains one image and no text is one picture.
        let image_cells = rows
            .iter()
            .flat_map(|row| row.iter())
            .all(|cell| cell.images.len() == 1 && !cell.has_text);
        if image_cells && rows.iter().map(|row| row.len()).sum::<usize>() >= 2 {
            self.mosaics.push(ImageMosaic {
                rows: rows
                    .iter()
                    .map(|row| row.iter().map(|cell| cell.images[0].clone()).collect())
                    .collect(),
            });
            return;
        }

        if rows.len() < 11 || table.cells < MIN_TABLE_CELLS {
            return;
        }
        let columns = rows
            .iter()
            .map(|row| row.iter().map(|cell| cell.span).sum::<usize>())
            .max()
            .unwrap_or(0);
        if columns > MAX_GRID_SIDE || rows.len() > MAX_GRID_SIDE {
            return;
        }
        let mut dark = Vec::with_capacity(columns * rows.len());
        for row in &rows {
            let mut filled = 0;
            for cell in row.iter() {
                if cell.has_text || !cell.images.is_empty() {
                    return;
                }
                let is_dark = cell.luma.is_some_and(|luma| luma < 128);
                dark.extend(std::iter::repeat_n(is_dark, cell.span));
                filled += cell.span;
            }
            dark.extend(std::iter::repeat_n(false, columns - filled));
        }
        self.grids.push(CellGrid {
            columns,
            rows: rows.len(),
            dark,
            cell_width: CELL_PIXELS,
            cell_height: CELL_PIXELS,
        });
    }

    fn finish_css_grid(&mut self, grid: CssGrid) {
        if grid.columns == 0 || grid.columns > MAX_GRID_SIDE || grid.cells.is_empty() {
            return;
        }
        let rows = grid.cells.len().div_ceil(grid.columns);
        let mut dark: Vec<bool> = grid
            .cells
            .iter()
            .map(|luma| luma.is_some_and(|luma| luma < 128))
            .collect();
        dark.resize(rows * grid.columns, false);
        self.grids.push(CellGrid {
            columns: grid.columns,
            rows,
            dark,
            cell_width: CELL_PIXELS,
            cell_height: CELL_PIXELS,
        });
    }
}

/// Returns the column count of a CSS grid container from its declarations.
fn grid_columns(declarations: &str) -> Option<usize> {
    let lower = declarations.to_ascii_lowercase();
    let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
    if !compact.contains("display:grid") && !compact.contains("display:inline-grid") {
        return None;
    }
    let value = declaration(&lower, "grid-template-columns")?;
    if let Some(inner) = value.trim().strip_prefix("repeat(") {
        return inner.split(',').next()?.trim().parse().ok();
    }
    Some(value.split_whitespace().count())
}

/// Returns the value of the last declaration of `property`.
fn declaration<'d>(declarations: &'d str, property: &str) -> Option<&'d str> {
    declarations
        .split(';')
        .filter_map(|item| item.split_once(':'))
        .filter(|(name, _)| name.trim().eq_ignore_ascii_case(property))
        .map(|(_, value)| value.trim())
        .next_back()
}

/// Returns the luma of an element's background colour from its declarations.
fn background_luma(declarations: &str) -> Option<u8> {
    let lower = declarations.to_ascii_lowercase();
    let colour = declaration(&lower, "background-color");
    let shorthand = declaration(&lower, "background");
    // The later of the two wins in CSS; without order information, the longhand is preferred.
    colour
        .and_then(colour_luma)
        .or_else(|| shorthand.and_then(|value| value.split_whitespace().find_map(colour_luma)))
}

/// Parses a CSS or HTML colour and returns its luma; `None` for unknown or transparent.
fn colour_luma(value: &str) -> Option<u8> {
    let value = value
        .trim()
        .trim_end_matches("!important")
        .trim()
        .to_ascii_lowercase();
    let (red, green, blue) = if let Some(hex) = value.strip_prefix('#') {
        let digits: Vec<u8> = hex
            .chars()
            .map(|c| c.to_digit(16).map(|digit| digit as u8))
            .collect::<Option<_>>()?;
        match digits.len() {
            3 | 4 => (digits[0] * 17, digits[1] * 17, digits[2] * 17),
            6 | 8 => (
                digits[0] * 16 + digits[1],
                digits[2] * 16 + digits[3],
                digits[4] * 16 + digits[5],
            ),
            _ => return None,
        }
    } else if let Some(arguments) = value
        .strip_prefix("rgb(")
        .or_else(|| value.strip_prefix("rgba("))
    {
        let parts: Vec<u8> = arguments
            .trim_end_matches(')')
            .split([',', ' ', '/'])
            .filter(|part| !part.is_empty())
            .take(3)
            .map(|part| {
                part.trim()
                    .parse::<f32>()
                    .ok()
                    .map(|number| number.clamp(0.0, 255.0) as u8)
            })
            .collect::<Option<_>>()?;
        if parts.len() != 3 {
            return None;
        }
        (parts[0], parts[1], parts[2])
    } else {
        match value.as_str() {
            "black" => (0, 0, 0),
            "white" => (255, 255, 255),
            "navy" => (0, 0, 128),
            "maroon" => (128, 0, 0),
            "darkblue" => (0, 0, 139),
            "darkgreen" => (0, 100, 0),
            "purple" => (128, 0, 128),
            "green" => (0, 128, 0),
            "blue" => (0, 0, 255),
            "red" => (255, 0, 0),
            "gray" | "grey" => (128, 128, 128),
            "silver" => (192, 192, 192),
            "yellow" => (255, 255, 0),
            _ => return None,
        }
    };
    let luma = (299 * u32::from(red) + 587 * u32::from(green) + 114 * u32::from(blue)) / 1000;
    Some(luma as u8)
}

/// Decodes numeric character references and the named ones that block
/// drawings use (`&nbsp;`, `&block;`, `&uhblk;`, `&lhblk;`, and the XML five).
fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('&') {
        out.push_str(&rest[..position]);
        rest = &rest[position..];
        let end = rest[1..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '#'))
            .map_or(rest.len(), |found| found + 1);
        let name = &rest[1..end];
        let decoded = match name {
            "nbsp" => Some('\u{a0}'),
            "block" => Some('█'),
            "uhblk" => Some('▀'),
            "lhblk" => Some('▄'),
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => name.strip_prefix('#').and_then(|number| {
                let value = match number.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                    None => number.parse().ok()?,
                };
                char::from_u32(value)
            }),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                let semicolon = usize::from(rest[end..].starts_with(';'));
                rest = &rest[end + semicolon..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Limits;

    fn modules(payload: &str) -> (usize, Vec<bool>) {
        let code = qrcode::QrCode::new(payload.as_bytes()).expect("encodable");
        let dark = code
            .to_colors()
            .into_iter()
            .map(|color| color == qrcode::Color::Dark)
            .collect();
        (code.width(), dark)
    }

    #[test]
    fn bgcolor_table_decodes() {
        let (width, dark) = modules("https://table.example/");
        let mut html = String::from("<table cellspacing=0 cellpadding=0>");
        for row in dark.chunks(width) {
            html.push_str("<tr>");
            for &cell in row {
                let colour = if cell { "#000000" } else { "#ffffff" };
                html.push_str(&format!("<td bgcolor=\"{colour}\" width=4 height=4></td>"));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        assert!(may_draw_code(&html));
        let found = drawings(&html);
        assert_eq!(found.grids.len(), 1);
        let codes = found.grids[0].decode(&Limits::default());
        assert_eq!(codes[0].payload, "https://table.example/");
    }

    #[test]
    fn css_grid_with_classes_decodes() {
        let (width, dark) = modules("https://css.example/");
        let mut html = format!(
            "<style>.k{{background:#111}} .w {{ background-color: rgb(250,250,250) }}</style>\
             <div style=\"display: grid; grid-template-columns: repeat({width}, 3px)\">"
        );
        for &cell in &dark {
            html.push_str(if cell {
                "<div class=\"k\"></div>"
            } else {
                "<div class=\"w\"></div>"
            });
        }
        html.push_str("</div>");
        let found = drawings(&html);
        assert_eq!(found.grids.len(), 1);
        let codes = found.grids[0].decode(&Limits::default());
        assert_eq!(codes[0].payload, "https://css.example/");
    }

    #[test]
    fn neighbouring_images_form_mosaics() {
        let html = "<p>Scan:</p><img src=\"cid:a\"><img src=\"cid:b\"><br><img src=\"cid:c\"><img src=\"cid:d\"><p>x</p>\
                    <table><tr><td><img src=\"cid:e\"></td></tr><tr><td><img src=\"cid:f\"></td></tr></table>";
        let found = drawings(html);
        assert_eq!(
            found.mosaics,
            vec![
                ImageMosaic {
                    rows: vec![
                        vec!["cid:a".to_owned(), "cid:b".to_owned()],
                        vec!["cid:c".to_owned(), "cid:d".to_owned()]
                    ]
                },
                ImageMosaic {
                    rows: vec![vec!["cid:e".to_owned()], vec!["cid:f".to_owned()]]
                },
            ]
        );
    }

    #[test]
    fn layout_table_gives_no_grid() {
        let html = "<table>".to_owned()
            + &"<tr><td bgcolor=#ffffff>Text</td><td>More</td></tr>".repeat(30)
            + "</table>";
        assert!(drawings(&html).grids.is_empty());
    }

    #[test]
    fn entities_decode_to_blocks() {
        assert_eq!(
            decode_entities("&#9608;&#x2580;&block;&nbsp;&lhblk"),
            "█▀█\u{a0}▄"
        );
    }

    #[test]
    fn colours_parse() {
        assert_eq!(colour_luma("#000"), Some(0));
        assert_eq!(colour_luma("#FFFFFF"), Some(255));
        assert_eq!(colour_luma("rgb(255, 255, 255)"), Some(255));
        assert_eq!(colour_luma("transparent"), None);
    }
}
