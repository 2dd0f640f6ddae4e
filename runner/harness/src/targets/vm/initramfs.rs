//! The initramfs: an uncompressed cpio archive in the "newc" format, which
//! every kernel with initramfs support unpacks (no compressor needed). It
//! holds the static agent as `/init`, the scenarios, and the few directories
//! init mounts on.

use orphanage_scenario::{VmScenario, VM_SCENARIOS_PATH};

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member<'a> {
    Dir {
        path: &'a str,
        mode: u32,
    },
    File {
        path: &'a str,
        mode: u32,
        data: &'a [u8],
    },
    CharDevice {
        path: &'a str,
        mode: u32,
        major: u32,
        minor: u32,
    },
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// A newc header (13 eight-digit hex fields after the magic), the NUL-ended
/// name, padding to 4 bytes, the data, padding again.
fn push_member(out: &mut Vec<u8>, ino: u32, path: &str, mode: u32, dev: (u32, u32), data: &[u8]) {
    let name_size = path.len() + 1;
    let fields = [
        ino,
        mode,
        0, // uid
        0, // gid
        if mode & S_IFDIR != 0 { 2 } else { 1 },
        0, // mtime: fixed, so the same input gives the same bytes
        data.len() as u32,
        0, // devmajor
        0, // devminor
        dev.0,
        dev.1,
        name_size as u32,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(path.as_bytes());
    out.push(0);
    pad4(out);
    out.extend_from_slice(data);
    pad4(out);
}

/// The archive, ending with the `TRAILER!!!` member the format requires.
pub fn newc_archive(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let ino = i as u32 + 1;
        match *m {
            Member::Dir { path, mode } => {
                push_member(&mut out, ino, path, S_IFDIR | mode, (0, 0), &[])
            }
            Member::File { path, mode, data } => {
                push_member(&mut out, ino, path, S_IFREG | mode, (0, 0), data)
            }
            Member::CharDevice {
                path,
                mode,
                major,
                minor,
            } => push_member(&mut out, ino, path, S_IFCHR | mode, (major, minor), &[]),
        }
    }
    push_member(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

/// The agent as `/init`, the scenarios at /scenarios.json, and the mount
/// points. `/dev/console` exists so the kernel can give init its fds 0-2.
pub fn agent_initramfs(agent: &[u8], scenarios: &[VmScenario]) -> Vec<u8> {
    let json = serde_json::to_vec(scenarios).expect("scenarios serialize");
    let scenarios_path = VM_SCENARIOS_PATH.trim_start_matches('/');
    newc_archive(&[
        Member::Dir {
            path: "dev",
            mode: 0o755,
        },
        Member::CharDevice {
            path: "dev/console",
            mode: 0o600,
            major: 5,
            minor: 1,
        },
        Member::Dir {
            path: "proc",
            mode: 0o555,
        },
        Member::Dir {
            path: "sys",
            mode: 0o555,
        },
        Member::Dir {
            path: "tmp",
            mode: 0o1777,
        },
        Member::File {
            path: "init",
            mode: 0o755,
            data: agent,
        },
        Member::File {
            path: scenarios_path,
            mode: 0o644,
            data: &json,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (name, mode, rdev, data) of a member.
    type Read = (String, u32, (u32, u32), Vec<u8>);

    /// A minimal newc reader.
    fn read(archive: &[u8]) -> Vec<Read> {
        let mut at = 0;
        let mut members = vec![];
        loop {
            assert_eq!(&archive[at..at + 6], b"070701", "magic at {at}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&archive[at + 6 + 8 * i..at + 14 + 8 * i]).unwrap();
                u32::from_str_radix(s, 16).unwrap()
            };
            let (mode, size, rdev, name_size) = (
                field(1),
                field(6) as usize,
                (field(9), field(10)),
                field(11) as usize,
            );
            let name_start = at + 110;
            let name = std::str::from_utf8(&archive[name_start..name_start + name_size - 1])
                .unwrap()
                .to_string();
            assert_eq!(archive[name_start + name_size - 1], 0, "name is NUL-ended");
            let data_start = (name_start + name_size).div_ceil(4) * 4;
            let data = archive[data_start..data_start + size].to_vec();
            at = (data_start + size).div_ceil(4) * 4;
            if name == "TRAILER!!!" {
                assert_eq!(at, archive.len(), "nothing after the trailer");
                return members;
            }
            members.push((name, mode, rdev, data));
        }
    }

    #[test]
    fn members_round_trip_with_alignment() {
        // Sizes 0..5 exercise every padding case for names and data.
        let datas: Vec<Vec<u8>> = (0..5).map(|n| vec![b'x'; n]).collect();
        let names: Vec<String> = (0..5).map(|n| format!("f{}", "a".repeat(n))).collect();
        let members: Vec<Member> = names
            .iter()
            .zip(&datas)
            .map(|(n, d)| Member::File {
                path: n,
                mode: 0o644,
                data: d,
            })
            .collect();
        let archive = newc_archive(&members);
        assert_eq!(archive.len() % 4, 0);
        let back = read(&archive);
        for (i, (name, mode, _, data)) in back.iter().enumerate() {
            assert_eq!(name, &names[i]);
            assert_eq!(*mode, S_IFREG | 0o644);
            assert_eq!(data, &datas[i]);
        }
    }

    #[test]
    fn the_agent_is_init_and_the_scenarios_are_json() {
        let scenario: orphanage_scenario::Scenario = serde_json::from_value(serde_json::json!({
            "checks": "x", "refs": [], "steps": []
        }))
        .unwrap();
        let scenarios = vec![VmScenario {
            name: "a::b".into(),
            scenario,
        }];
        let archive = agent_initramfs(b"\x7fELF agent", &scenarios);
        let members = read(&archive);
        let find = |n: &str| {
            members
                .iter()
                .find(|m| m.0 == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let init = find("init");
        assert_eq!(init.1, S_IFREG | 0o755);
        assert_eq!(init.3, b"\x7fELF agent");
        let console = find("dev/console");
        assert_eq!((console.1, console.2), (S_IFCHR | 0o600, (5, 1)));
        for dir in ["dev", "proc", "sys", "tmp"] {
            assert_eq!(find(dir).1 & S_IFDIR, S_IFDIR, "{dir}");
        }
        let back: Vec<VmScenario> = serde_json::from_slice(&find("scenarios.json").3).unwrap();
        assert_eq!(back, scenarios);
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        assert_eq!(agent_initramfs(b"a", &[]), agent_initramfs(b"a", &[]));
    }
}
