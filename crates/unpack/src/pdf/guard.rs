//! A bound on what a PDF's streams decode to, computed before the PDF reader runs.
//!
//! hayro decodes a stream in full whenever it is read, with no size limit,
//! and it decodes object streams while it loads the cross-reference table.
//! One Flate stream can expand about 1,000 times, so a PDF of a few
//! megabytes could ask for gigabytes. Every stream is therefore found in the
//! raw bytes first (`N G obj << … >> stream … endstream`) and its decoded
//! size bounded: Flate data is inflated into a counter that keeps nothing,
//! and other filters count at their largest possible expansion.

use std::io::{self, Read, Write};

use flate2::read::{DeflateDecoder, ZlibDecoder};
use memchr::memmem;

/// Largest output of one byte of LZW data: a 12-bit code can emit a string of
/// up to 4,096 bytes, so 1.5 bytes may give 4,096.
const LZW_MAX_RATIO: u64 = 2_731;
/// Largest output of one byte of run-length data: 2 bytes repeat one byte 128 times.
const RUN_LENGTH_MAX_RATIO: u64 = 64;
/// Largest output of one byte of ASCII85: `z` stands for four zero bytes.
const ASCII85_MAX_RATIO: u64 = 4;
/// Largest output of one byte of Deflate data (RFC 1951 length codes give at
/// most 258 bytes for a bit or two, which zlib's documentation puts at 1032:1).
const DEFLATE_MAX_RATIO: u64 = 1_032;
/// Bytes before `stream` searched for the start of its dictionary.
const MAX_DICT_BYTES: usize = 4_096;

/// Facts about a PDF from a scan of its raw bytes.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// The bound on the decoded size of every stream, in bytes.
    pub(crate) decoded_bound: u64,
    /// The largest width × height an image declares.
    pub(crate) max_image_pixels: u64,
    /// Whether the trailer names an `/Encrypt` dictionary.
    pub(crate) encrypted: bool,
    /// Streams whose Flate data did not inflate, as it does not when it is
    /// encrypted. Object streams among them count at Deflate's largest ratio;
    /// the others count at their raw size here and are bounded again after
    /// decryption by [`decrypted_bound`].
    pub(crate) opaque_streams: usize,
}

/// Scans the raw bytes of a PDF, stopping once the bound passes `max_decoded`.
pub(crate) fn survey(data: &[u8], max_decoded: u64) -> Survey {
    let mut survey = Survey {
        encrypted: memmem::find(data, b"/Encrypt").is_some(),
        ..Survey::default()
    };
    let stream_finder = memmem::Finder::new(b"stream");
    let end_finder = memmem::Finder::new(b"endstream");
    let mut position = 0;
    while let Some(offset) = stream_finder.find(&data[position..]) {
        let keyword = position + offset;
        position = keyword + b"stream".len();
        // `endstream` contains `stream`; only the opening keyword starts data.
        if data[..keyword].ends_with(b"end") {
            continue;
        }
        let start = match data.get(position..) {
            Some([b'\r', b'\n', ..]) => position + 2,
            Some([b'\n' | b'\r', ..]) => position + 1,
            _ => continue,
        };
        let end = end_finder
            .find(&data[start..])
            .map_or(data.len(), |found| start + found);
        let dict = dictionary_before(data, keyword);
        let raw = &data[start..end];
        position = end;

        let stream = StreamInfo::parse(dict);
        if stream.is_image {
            survey.max_image_pixels = survey.max_image_pixels.max(stream.pixels());
        }
        let remaining = max_decoded.saturating_sub(survey.decoded_bound);
        let filters = stream.filters.iter().map(String::as_str);
        let (mut bound, opaque) = decoded_bound(filters, raw, stream.pixels(), remaining);
        if opaque {
            survey.opaque_streams += 1;
            // The PDF reader decodes object streams while it loads, before a
            // second check could run, so they keep the worst-case bound.
            if !stream.is_object_stream {
                bound = raw.len() as u64;
            }
        }
        survey.decoded_bound = survey.decoded_bound.saturating_add(bound);
        if survey.decoded_bound > max_decoded {
            break;
        }
    }
    survey
}

/// Returns the text between the last `obj` keyword before `keyword` and `keyword`.
fn dictionary_before(data: &[u8], keyword: usize) -> &[u8] {
    let from = keyword.saturating_sub(MAX_DICT_BYTES);
    let window = &data[from..keyword];
    match memmem::rfind(window, b"obj") {
        Some(found) => &window[found + 3..],
        None => window,
    }
}

/// Bounds the decoded size of every stream again, after hayro decrypted it.
pub(crate) fn decrypted_bound(pdf: &hayro::hayro_syntax::Pdf, max_decoded: u64) -> u64 {
    use hayro::hayro_syntax::Filter;
    use hayro::hayro_syntax::object::Object;

    let mut total = 0u64;
    for object in pdf.objects() {
        let Object::Stream(stream) = object else {
            continue;
        };
        let names: Vec<&str> = stream
            .filters()
            .iter()
            .map(|filter| match filter {
                Filter::AsciiHexDecode => "ASCIIHexDecode",
                Filter::Ascii85Decode => "ASCII85Decode",
                Filter::LzwDecode => "LZWDecode",
                Filter::FlateDecode => "FlateDecode",
                Filter::RunLengthDecode => "RunLengthDecode",
                Filter::CcittFaxDecode => "CCITTFaxDecode",
                Filter::Jbig2Decode => "JBIG2Decode",
                Filter::DctDecode => "DCTDecode",
                Filter::JpxDecode => "JPXDecode",
                Filter::Crypt => "Crypt",
            })
            .collect();
        let dict = stream.dict();
        let pixels = u64::from(dict.get::<u32>(b"Width").unwrap_or(0))
            .saturating_mul(u64::from(dict.get::<u32>(b"Height").unwrap_or(0)));
        let raw = stream.raw_data();
        let remaining = max_decoded.saturating_sub(total);
        let (bound, _) = decoded_bound(names.into_iter(), &raw, pixels, remaining);
        total = total.saturating_add(bound);
        if total > max_decoded {
            break;
        }
    }
    total
}

/// The facts of one stream dictionary that bound its decoded size.
#[derive(Debug, Default)]
struct StreamInfo {
    filters: Vec<String>,
    is_image: bool,
    is_object_stream: bool,
    width: u64,
    height: u64,
}

impl StreamInfo {
    fn parse(dict: &[u8]) -> StreamInfo {
        let text = String::from_utf8_lossy(dict);
        StreamInfo {
            filters: filter_names(&text),
            is_image: text.contains("/Image"),
            is_object_stream: text.contains("/ObjStm"),
            width: number_after(&text, "/Width")
                .or_else(|| number_after(&text, "/W "))
                .unwrap_or(0),
            height: number_after(&text, "/Height")
                .or_else(|| number_after(&text, "/H "))
                .unwrap_or(0),
        }
    }

    fn pixels(&self) -> u64 {
        self.width.saturating_mul(self.height)
    }
}

/// Returns the bound on the decoded size of one stream with `filters`
/// applied in order, and whether its Flate data failed to inflate. Image
/// codecs count four bytes for each of the `pixels` the image declares.
fn decoded_bound<'f>(
    filters: impl Iterator<Item = &'f str>,
    raw: &[u8],
    pixels: u64,
    remaining: u64,
) -> (u64, bool) {
    let mut size = raw.len() as u64;
    let mut opaque = false;
    for (index, filter) in filters.enumerate() {
        size = match filter {
            "FlateDecode" | "Fl" if index == 0 => match inflated_size(raw, remaining) {
                Some(inflated) => inflated,
                None => {
                    opaque = true;
                    size.saturating_mul(DEFLATE_MAX_RATIO)
                }
            },
            "FlateDecode" | "Fl" => size.saturating_mul(DEFLATE_MAX_RATIO),
            "LZWDecode" | "LZW" => size.saturating_mul(LZW_MAX_RATIO),
            "RunLengthDecode" | "RL" => size.saturating_mul(RUN_LENGTH_MAX_RATIO),
            "ASCII85Decode" | "A85" => size.saturating_mul(ASCII85_MAX_RATIO),
            "ASCIIHexDecode" | "AHx" => size / 2 + 1,
            "DCTDecode" | "DCT" | "JPXDecode" | "JBIG2Decode" | "CCITTFaxDecode" | "CCF" => {
                pixels.saturating_mul(4).max(size)
            }
            _ => size,
        };
    }
    (size, opaque)
}

/// Returns the filter names of a stream dictionary, in the order they apply.
fn filter_names(text: &str) -> Vec<String> {
    let Some(start) = text.find("/Filter") else {
        return Vec::new();
    };
    let rest = text[start + "/Filter".len()..].trim_start();
    let value = if let Some(array) = rest.strip_prefix('[') {
        array.split(']').next().unwrap_or("")
    } else {
        // One name: up to the next delimiter after its own slash.
        let end = rest[1.min(rest.len())..]
            .find(['/', '>', '[', ' ', '\r', '\n'])
            .map_or(rest.len(), |found| found + 1);
        &rest[..end]
    };
    value
        .split('/')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Reads the unsigned integer that follows `key` in a dictionary's text.
fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits: String = text[start..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Inflates zlib or raw Deflate data into a counter, up to `cap` + 1 bytes.
/// Returns `None` when the data is not Deflate at all (as when it is encrypted).
fn inflated_size(raw: &[u8], cap: u64) -> Option<u64> {
    let zlib = count(ZlibDecoder::new(raw), cap);
    if let Some(size) = zlib.filter(|size| *size > 0) {
        return Some(size);
    }
    count(DeflateDecoder::new(raw), cap).filter(|size| *size > 0)
}

fn count(reader: impl Read, cap: u64) -> Option<u64> {
    let mut counter = Counter(0);
    // A truncated or damaged stream still yields what it decoded before the
    // error, and the PDF reader decodes as far as it can too.
    match io::copy(&mut reader.take(cap.saturating_add(1)), &mut counter) {
        Ok(_) => Some(counter.0),
        Err(_) if counter.0 > 0 => Some(counter.0),
        Err(_) => None,
    }
}

/// A writer that keeps only the number of bytes written.
struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, buffer: &[u8]) -> io::Result<usize> {
        self.0 += buffer.len() as u64;
        Ok(buffer.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(data).expect("write to memory");
        encoder.finish().expect("finish in memory")
    }

    fn pdf_with_stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut pdf = format!("%PDF-1.7\n1 0 obj\n{dict}\nstream\n").into_bytes();
        pdf.extend_from_slice(data);
        pdf.extend_from_slice(b"\nendstream\nendobj\n%%EOF\n");
        pdf
    }

    #[test]
    fn flate_stream_counts_inflated_size() {
        let data = zlib(&[b'a'; 100_000]);
        let pdf = pdf_with_stream("<< /Filter /FlateDecode /Length 9 >>", &data);
        let survey = survey(&pdf, u64::MAX);
        assert_eq!(survey.decoded_bound, 100_000);
    }

    #[test]
    fn flate_bomb_stops_at_the_limit() {
        let data = zlib(&vec![0u8; 50_000_000]);
        let pdf = pdf_with_stream("<< /Filter [/FlateDecode] >>", &data);
        let survey = survey(&pdf, 1_000_000);
        assert!(survey.decoded_bound > 1_000_000, "{survey:?}");
    }

    #[test]
    fn image_dimensions_are_read() {
        let pdf = pdf_with_stream(
            "<< /Type /XObject /Subtype /Image /Width 40000 /Height 30000 /Filter /DCTDecode >>",
            b"\xff\xd8",
        );
        let survey = survey(&pdf, u64::MAX);
        assert_eq!(survey.max_image_pixels, 1_200_000_000);
    }

    #[test]
    fn encrypted_data_is_opaque() {
        let pdf = pdf_with_stream("<< /Filter /FlateDecode >>", &[0x17; 64]);
        let survey = survey(&pdf, u64::MAX);
        assert_eq!(survey.opaque_streams, 1);
    }

    #[test]
    fn filter_names_in_arrays_and_alone() {
        assert_eq!(
            filter_names("<< /Filter [ /ASCII85Decode /FlateDecode ] >>"),
            vec!["ASCII85Decode", "FlateDecode"]
        );
        assert_eq!(
            filter_names("<</Filter/FlateDecode/Length 3>>"),
            vec!["FlateDecode"]
        );
    }
}
