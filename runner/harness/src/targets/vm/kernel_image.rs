//! Recognising kernel images. QEMU boots an x86 bzImage, or an uncompressed
//! ELF vmlinux that carries a PVH entry note. Under TCG the bzImage's own
//! decompressor costs seconds of emulated time, so `kernels fetch` also
//! unpacks the vmlinux next to it; the same kernel then starts at once.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelKind {
    /// The boot protocol's "HdrS" image (what /boot/vmlinuz-* is).
    BzImage,
    /// An x86-64 ELF; bootable when it has a PVH note.
    Elf,
}

/// What the first 4 KiB of a file say it is.
pub fn kernel_kind(head: &[u8]) -> Option<KernelKind> {
    if head.len() >= 0x206 && &head[0x202..0x206] == b"HdrS" && head[0x1fe..0x200] == [0x55, 0xaa] {
        return Some(KernelKind::BzImage);
    }
    // ELFCLASS64, little-endian, e_machine EM_X86_64 (62).
    if head.len() >= 20
        && &head[..4] == b"\x7fELF"
        && head[4] == 2
        && head[5] == 1
        && head[18..20] == [62, 0]
    {
        return Some(KernelKind::Elf);
    }
    None
}

/// Why a file cannot be booted, or a bzImage not unpacked. Each names the file.
// The cause is part of the message, not a chained source: these are
// printed on their own, in verdicts and notes, as often as through anyhow.
#[derive(Debug, thiserror::Error)]
pub enum KernelImageError {
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{}: not a kernel image (expected an x86 bzImage or an x86-64 ELF vmlinux)", .0.display())]
    NotAKernel(PathBuf),
    #[error("{}: an ELF vmlinux without a PVH entry note, which QEMU cannot boot (use the bzImage)", .0.display())]
    ElfWithoutPvh(PathBuf),
    #[error("{}: no payload this tool can unpack", .0.display())]
    NoPayload(PathBuf),
    #[error("{program}: {error}")]
    Decompressor {
        program: &'static str,
        error: std::io::Error,
    },
    #[error("{}: the unpacked vmlinux has no PVH entry", .0.display())]
    UnpackedWithoutPvh(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KernelImageError + '_ {
    move |error| KernelImageError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Checks a path is a kernel image QEMU can boot: one clear message if not.
pub fn check_kernel_file(path: &Path) -> Result<KernelKind, KernelImageError> {
    use std::io::Read;
    let mut head = vec![0u8; 4096];
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let n = file.read(&mut head).map_err(io(path))?;
    head.truncate(n);
    let kind =
        kernel_kind(&head).ok_or_else(|| KernelImageError::NotAKernel(path.to_path_buf()))?;
    if kind == KernelKind::Elf {
        let elf = std::fs::read(path).map_err(io(path))?;
        if !has_pvh_note(&elf) {
            return Err(KernelImageError::ElfWithoutPvh(path.to_path_buf()));
        }
    }
    Ok(kind)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    fn by_magic(payload: &[u8]) -> Option<Self> {
        if payload.starts_with(b"\xfd7zXZ\x00") {
            Some(Compression::Xz)
        } else if payload.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Some(Compression::Zstd)
        } else if payload.starts_with(&[0x1f, 0x8b]) {
            Some(Compression::Gzip)
        } else {
            None
        }
    }

    /// The decompressor that reads stdin and writes stdout.
    fn command(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Compression::Xz => ("xz", &["-dcq"]),
            Compression::Zstd => ("zstd", &["-dcq"]),
            Compression::Gzip => ("gzip", &["-dcq"]),
        }
    }
}

/// Where a bzImage keeps its compressed vmlinux (boot protocol 2.08+:
/// `payload_offset` and `payload_length`, counted from the protected-mode
/// code after the setup sectors), and how it is compressed.
pub fn bzimage_payload(image: &[u8]) -> Option<(Range<usize>, Compression)> {
    if kernel_kind(image) != Some(KernelKind::BzImage) {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(image[o..o + 4].try_into().unwrap());
    if image.len() < 0x250 || u16_at(0x206) < 0x0208 {
        return None;
    }
    let setup_sects = match image[0x1f1] {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248) as usize;
    let end = start.checked_add(u32_at(0x24c) as usize)?;
    let payload = image.get(start..end)?;
    Some((start..end, Compression::by_magic(payload)?))
}

/// Whether an ELF vmlinux has the PVH entry point QEMU boots it by (a
/// PT_NOTE with the "Xen" note XEN_ELFNOTE_PHYS32_ENTRY, type 18).
pub fn has_pvh_note(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(ph) != Some(4) {
            continue; // not PT_NOTE
        }
        let (Some(offset), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            continue;
        };
        let mut at = offset;
        while at + 12 <= offset + size {
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8))
            else {
                break;
            };
            let name = elf.get(at + 12..at + 12 + namesz).unwrap_or_default();
            if kind == 18 && name == b"Xen\0" {
                return true;
            }
            at += 12 + namesz.div_ceil(4) * 4 + descsz.div_ceil(4) * 4;
        }
    }
    false
}

/// Unpacks a bzImage's vmlinux into `out` with the system's decompressor,
/// and keeps it only if QEMU can boot it (PVH note).
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<(), KernelImageError> {
    let image = std::fs::read(bzimage).map_err(io(bzimage))?;
    let (range, compression) = bzimage_payload(&image)
        .ok_or_else(|| KernelImageError::NoPayload(bzimage.to_path_buf()))?;
    let (program, args) = compression.command();
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(file)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|error| KernelImageError::Decompressor { program, error })?;
    let mut stdin = child.stdin.take().expect("piped");
    // The kernel appends the uncompressed size after the stream, which the
    // tools call trailing garbage: judge the result, not their exit code.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&image[range]);
    });
    let _ = writer.join();
    let _ = child.wait();
    let elf = std::fs::read(out).map_err(io(out))?;
    if kernel_kind(&elf) != Some(KernelKind::Elf) || !has_pvh_note(&elf) {
        let _ = std::fs::remove_file(out);
        return Err(KernelImageError::UnpackedWithoutPvh(bzimage.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    /// A bzImage header: boot sector signature, "HdrS", protocol 2.15, one
    /// setup sector, and a payload at `offset` (from the protected-mode code).
    fn bzimage(payload: &[u8], offset: u32) -> Vec<u8> {
        let mut image = vec![0u8; 1024 + offset as usize];
        image[0x1f1] = 1;
        image[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x248..0x24c].copy_from_slice(&offset.to_le_bytes());
        image[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend_from_slice(payload);
        image
    }

    fn elf_with_note(name: &[u8], kind: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 62;
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let note_at = elf.len() as u64;
        let mut note = vec![];
        note.extend_from_slice(&(name.len() as u32).to_le_bytes());
        note.extend_from_slice(&4u32.to_le_bytes());
        note.extend_from_slice(&kind.to_le_bytes());
        note.extend_from_slice(name);
        while note.len() % 4 != 0 {
            note.push(0);
        }
        note.extend_from_slice(&[1, 2, 3, 4]);
        elf[0x40..0x44].copy_from_slice(&4u32.to_le_bytes());
        elf[0x48..0x50].copy_from_slice(&note_at.to_le_bytes());
        elf[0x60..0x68].copy_from_slice(&(note.len() as u64).to_le_bytes());
        elf.extend_from_slice(&note);
        elf
    }

    #[rstest]
    #[case::bzimage(bzimage(b"\xfd7zXZ\x00", 0), Some(KernelKind::BzImage))]
    #[case::elf(elf_with_note(b"Xen\0", 18), Some(KernelKind::Elf))]
    #[case::text(b"#!/bin/sh\necho not a kernel\n".to_vec(), None)]
    #[case::empty(vec![], None)]
    fn kernel_images_are_recognised(#[case] head: Vec<u8>, #[case] kind: Option<KernelKind>) {
        assert_eq!(kernel_kind(&head), kind);
    }

    #[rstest]
    #[case(b"\xfd7zXZ\x00rest".as_slice(), Compression::Xz)]
    #[case(&[0x28, 0xb5, 0x2f, 0xfd, 9], Compression::Zstd)]
    #[case(&[0x1f, 0x8b, 8], Compression::Gzip)]
    fn the_payload_is_found_after_the_setup_sectors(
        #[case] payload: &[u8],
        #[case] c: Compression,
    ) {
        let image = bzimage(payload, 100);
        let (range, compression) = bzimage_payload(&image).unwrap();
        assert_eq!(&image[range], payload);
        assert_eq!(compression, c);
    }

    #[test]
    fn an_unknown_payload_is_not_unpacked() {
        assert_eq!(bzimage_payload(&bzimage(b"LZ4?", 0)), None);
    }

    #[rstest]
    #[case(b"Xen\0".as_slice(), 18, true)]
    #[case(b"Xen\0".as_slice(), 17, false)]
    #[case(b"GNU\0".as_slice(), 18, false)]
    fn the_pvh_note_is_found(#[case] name: &[u8], #[case] kind: u32, #[case] found: bool) {
        assert_eq!(has_pvh_note(&elf_with_note(name, kind)), found);
    }

    #[test]
    fn a_real_round_trip_through_gzip() {
        // The unpacked file must be a PVH ELF; a gzip'd fake one is.
        let elf = elf_with_note(b"Xen\0", 18);
        let mut gz = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        gz.stdin.take().unwrap().write_all(&elf).unwrap();
        let compressed = gz.wait_with_output().unwrap().stdout;
        let dir = tempfile::tempdir().unwrap();
        let image_path = dir.path().join("vmlinuz");
        std::fs::write(&image_path, bzimage(&compressed, 0)).unwrap();
        let out = dir.path().join("vmlinux");
        extract_vmlinux(&image_path, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), elf);
    }
}
