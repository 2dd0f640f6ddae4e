//! Frames that survive a shared console. A kernel with one console (`ttyS0`,
//! `hvc0`) writes its log to the same line that carries results, and a log
//! line may land in the middle of a frame. Each frame therefore says where it
//! starts (a marker), how long it is and what it holds (CRC-32 of the JSON):
//!
//! ```text
//! \nORPHANAGE-FRAME <length> <crc32, 8 hex digits> <JSON of length bytes>\n
//! ```
//!
//! The reader takes whatever the line carries, hands back each intact frame
//! and the text around them (the console log), and counts the frames a log
//! line broke. The same framing is used on a dedicated result port, so there
//! is one reader for every transport.

use crate::vm_wire::VmFrame;

const MARKER: &[u8] = b"ORPHANAGE-FRAME ";
/// Past this a length field is noise, not a frame.
const MAX_FRAME: usize = 1 << 20;

/// The bytes that carry one frame.
pub fn encode_frame(frame: &VmFrame) -> Vec<u8> {
    let json = serde_json::to_vec(frame).expect("frames serialize");
    let mut out = format!(
        "\n{}{} {:08x} ",
        std::str::from_utf8(MARKER).expect("ascii"),
        json.len(),
        crc32fast::hash(&json)
    )
    .into_bytes();
    out.extend_from_slice(&json);
    out.push(b'\n');
    out
}

/// What the reader found.
#[derive(Debug, PartialEq)]
pub enum FramePiece {
    Frame(VmFrame),
    /// Console text between frames (the kernel log, init's diagnostics).
    Text(Vec<u8>),
    /// A marker whose frame did not check out: what was wrong with it.
    Broken(String),
}

#[derive(Debug, Default)]
pub struct FrameReader {
    pending: Vec<u8>,
    /// A frame was found broken after its header, and only its marker was
    /// skipped: its JSON comes back as text, and is not a second loss.
    body_of_a_broken_frame_follows: bool,
    /// The last bytes of console text, too few to be a frame's JSON start:
    /// text comes in pieces, and the start may span two.
    text_tail: Vec<u8>,
}

/// How every frame's JSON begins (`VmFrame` is tagged `frame`). Found in
/// console text, it is a frame whose marker a log line broke.
const FRAME_JSON: &[u8] = b"{\"frame\":\"";

enum Header {
    /// Not enough bytes yet to tell.
    Incomplete,
    Bad(String),
    /// Length, checksum, and where the JSON starts.
    Good(usize, u32, usize),
}

/// Reads `<length> <crc> ` after a marker.
fn header(after: &[u8]) -> Header {
    let mut fields = [0usize; 2];
    let mut at = 0;
    for (i, field) in fields.iter_mut().enumerate() {
        let Some(end) = after[at..].iter().position(|&b| b == b' ') else {
            return if after.len() - at > 16 {
                Header::Bad("a header field that never ends".into())
            } else {
                Header::Incomplete
            };
        };
        let text = std::str::from_utf8(&after[at..at + end]).unwrap_or("");
        let parsed = if i == 0 {
            text.parse::<usize>().ok()
        } else if text.len() == 8 {
            usize::from_str_radix(text, 16).ok()
        } else {
            None
        };
        match parsed {
            Some(v) => *field = v,
            None => return Header::Bad(format!("a bad header field {text:?}")),
        }
        at += end + 1;
    }
    if fields[0] > MAX_FRAME {
        return Header::Bad(format!("an absurd length {}", fields[0]));
    }
    Header::Good(fields[0], fields[1] as u32, at)
}

impl FrameReader {
    /// The line has ended: whatever is still held (a frame cut off by a
    /// panic, say) is console text after all.
    pub fn finish(&mut self) -> Vec<FramePiece> {
        let mut pieces = Vec::new();
        let text = std::mem::take(&mut self.pending);
        self.push_text(&mut pieces, text);
        pieces
    }

    /// Console text, and a broken frame for each frame's JSON in it that
    /// no marker announced.
    fn push_text(&mut self, pieces: &mut Vec<FramePiece>, text: Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let mut seen = std::mem::take(&mut self.text_tail);
        seen.extend_from_slice(&text);
        // The tail is shorter than the pattern: every match here is new.
        let mut unannounced = seen
            .windows(FRAME_JSON.len())
            .filter(|w| *w == FRAME_JSON)
            .count();
        self.text_tail = seen[seen.len().saturating_sub(FRAME_JSON.len() - 1)..].to_vec();
        if unannounced > 0 && std::mem::take(&mut self.body_of_a_broken_frame_follows) {
            unannounced -= 1;
        }
        pieces.push(FramePiece::Text(text));
        for _ in 0..unannounced {
            pieces.push(FramePiece::Broken(
                "a log line broke into its marker".into(),
            ));
        }
    }

    /// Takes more bytes from the line; returns what they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<FramePiece> {
        self.pending.extend_from_slice(bytes);
        let mut pieces = Vec::new();
        loop {
            let Some(start) = find(&self.pending, MARKER) else {
                // Keep a tail that could be the start of a marker.
                let keep = partial_marker_len(&self.pending);
                let text: Vec<u8> = self.pending.drain(..self.pending.len() - keep).collect();
                self.push_text(&mut pieces, text);
                return pieces;
            };
            let text: Vec<u8> = self.pending.drain(..start).collect();
            self.push_text(&mut pieces, text);
            // Text before a marker and text after its frame are not one line.
            self.text_tail.clear();
            // A broken frame's body, had it come, came before this marker.
            self.body_of_a_broken_frame_follows = false;
            let after = &self.pending[MARKER.len()..];
            match header(after) {
                Header::Incomplete => return pieces,
                Header::Bad(why) => {
                    pieces.push(FramePiece::Broken(why));
                    self.body_of_a_broken_frame_follows = true;
                    self.pending.drain(..MARKER.len());
                }
                Header::Good(len, crc, at) => {
                    if after.len() < at + len {
                        return pieces;
                    }
                    let json = &after[at..at + len];
                    let piece = if crc32fast::hash(json) != crc {
                        FramePiece::Broken(
                            "its checksum does not match (a log line broke into it)".into(),
                        )
                    } else {
                        match serde_json::from_slice(json) {
                            Ok(frame) => FramePiece::Frame(frame),
                            Err(e) => FramePiece::Broken(format!("its JSON does not parse: {e}")),
                        }
                    };
                    let intact = matches!(piece, FramePiece::Frame(_));
                    self.body_of_a_broken_frame_follows = !intact;
                    pieces.push(piece);
                    // A broken frame's bytes may hold the next marker: skip
                    // only the marker, and look again.
                    let skip = if intact {
                        MARKER.len() + at + len
                    } else {
                        MARKER.len()
                    };
                    self.pending.drain(..skip);
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The longest suffix of `bytes` that is a prefix of the marker.
fn partial_marker_len(bytes: &[u8]) -> usize {
    (1..MARKER.len())
        .rev()
        .find(|&n| bytes.len() >= n && bytes.ends_with(&MARKER[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Verdict};

    fn frames() -> Vec<VmFrame> {
        vec![
            VmFrame::Booted {
                release: "6.1.0-50-amd64".into(),
                scenarios: 2,
            },
            VmFrame::Event {
                scenario: "zombie::x".into(),
                event: Event::Finished {
                    verdict: Verdict::fail("expected zombie,\nobserved gone"),
                    steps_ms: 1.0,
                },
            },
            VmFrame::Done,
        ]
    }

    fn frames_in(pieces: &[FramePiece]) -> Vec<&VmFrame> {
        pieces
            .iter()
            .filter_map(|p| match p {
                FramePiece::Frame(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn frames_come_back_whole_however_the_bytes_are_cut() {
        let mut stream = b"[    0.000000] Linux version 6.1\n".to_vec();
        for f in frames() {
            stream.extend(encode_frame(&f));
            stream.extend_from_slice(b"[    1.2] random: crng init done\n");
        }
        for chunk in [1, 3, 7, 64, stream.len()] {
            let mut reader = FrameReader::default();
            let mut pieces = Vec::new();
            for part in stream.chunks(chunk) {
                pieces.extend(reader.push(part));
            }
            let got: Vec<VmFrame> = frames_in(&pieces).into_iter().cloned().collect();
            assert_eq!(got, frames(), "chunks of {chunk}");
            let text: Vec<u8> = pieces
                .iter()
                .flat_map(|p| match p {
                    FramePiece::Text(t) => t.clone(),
                    _ => vec![],
                })
                .collect();
            let text = String::from_utf8(text).unwrap();
            assert!(text.contains("Linux version 6.1") && text.contains("crng init done"));
            assert!(!text.contains("ORPHANAGE-FRAME"), "{text}");
        }
    }

    #[test]
    fn a_log_line_inside_a_frame_breaks_only_that_frame() {
        let [first, second, third]: [VmFrame; 3] = frames().try_into().unwrap();
        let mut broken = encode_frame(&second);
        let middle = broken.len() / 2;
        broken.splice(
            middle..middle,
            b"\n[ 2.0] usb 1-1: new device\n".iter().copied(),
        );
        let mut stream = encode_frame(&first);
        stream.extend(broken);
        stream.extend(encode_frame(&third));
        let pieces = FrameReader::default().push(&stream);
        assert_eq!(frames_in(&pieces), [&first, &third]);
        let broken: Vec<&FramePiece> = pieces
            .iter()
            .filter(|p| matches!(p, FramePiece::Broken(_)))
            .collect();
        assert_eq!(broken.len(), 1, "{pieces:?}");
    }

    #[test]
    fn a_log_line_inside_a_marker_is_counted_as_a_broken_frame() {
        let [first, second, third]: [VmFrame; 3] = frames().try_into().unwrap();
        let mut broken = encode_frame(&second);
        // Inside "ORPHANAGE-FRAME": no marker is left to find.
        broken.splice(5..5, b"\n[ 2.0] usb 1-1: new device\n".iter().copied());
        let mut stream = encode_frame(&first);
        stream.extend(broken);
        stream.extend(encode_frame(&third));
        // However the bytes arrive.
        for cut in [1, 7, stream.len()] {
            let mut reader = FrameReader::default();
            let mut pieces = vec![];
            for chunk in stream.chunks(cut) {
                pieces.extend(reader.push(chunk));
            }
            pieces.extend(reader.finish());
            assert_eq!(frames_in(&pieces), [&first, &third]);
            let broken = pieces
                .iter()
                .filter(|p| matches!(p, FramePiece::Broken(_)))
                .count();
            assert_eq!(broken, 1, "cut {cut}: {pieces:?}");
        }
    }

    #[test]
    fn a_bad_header_without_a_body_does_not_hide_the_next_lost_frame() {
        let [first, second, third]: [VmFrame; 3] = frames().try_into().unwrap();
        // A bad header with no frame after it: noise, counted once.
        let mut stream = b"\nORPHANAGE-FRAME x y \n".to_vec();
        stream.extend(encode_frame(&first));
        // Then a frame whose marker a log line broke: lost, and counted.
        let mut lost = encode_frame(&second);
        lost.splice(5..5, b"\n[ 2.0] usb 1-1: new device\n".iter().copied());
        stream.extend(lost);
        stream.extend(encode_frame(&third));
        let mut reader = FrameReader::default();
        let mut pieces = reader.push(&stream);
        pieces.extend(reader.finish());
        assert_eq!(frames_in(&pieces), [&first, &third]);
        let broken = pieces
            .iter()
            .filter(|p| matches!(p, FramePiece::Broken(_)))
            .count();
        assert_eq!(broken, 2, "{pieces:?}");
    }

    #[test]
    fn a_frame_cut_off_by_the_end_is_handed_back_as_text() {
        let mut stream = encode_frame(&VmFrame::Done);
        stream.truncate(stream.len() - 3);
        stream.extend_from_slice(b"Kernel panic - not syncing: x\n");
        let mut reader = FrameReader::default();
        let pieces = reader.push(&stream[..stream.len() - 30]);
        assert!(frames_in(&pieces).is_empty());
        let mut rest = reader.push(&stream[stream.len() - 30..]);
        rest.extend(reader.finish());
        let text: Vec<u8> = rest
            .into_iter()
            .flat_map(|p| match p {
                FramePiece::Text(t) => t,
                _ => vec![],
            })
            .collect();
        assert!(String::from_utf8_lossy(&text).contains("Kernel panic"));
    }

    #[test]
    fn noise_that_looks_like_a_header_is_not_a_frame() {
        let mut stream = b"ORPHANAGE-FRAME 99999999999 zz \n".to_vec();
        stream.extend(encode_frame(&VmFrame::Done));
        let pieces = FrameReader::default().push(&stream);
        assert_eq!(frames_in(&pieces), [&VmFrame::Done]);
        assert!(matches!(pieces[0], FramePiece::Broken(_)), "{pieces:?}");
    }
}
