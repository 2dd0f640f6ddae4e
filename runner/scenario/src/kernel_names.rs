//! Kernel constants spelled the way the man pages spell them: `SIGCHLD`,
//! `EINVAL`, `MFD_NOEXEC_SEAL`, `F_SEAL_WRITE`, `WNOWAIT`.

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A name in a scenario that means nothing: a kernel constant spelled wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{text}` ({hint})")]
pub struct UnknownName {
    /// What kind of name (`signal`, `errno`, `memfd_create flag`).
    pub what: &'static str,
    pub text: String,
    /// How to spell one, or the ones there are.
    pub hint: String,
}

impl UnknownName {
    pub fn new(what: &'static str, text: &str, hint: impl Into<String>) -> Self {
        UnknownName {
            what,
            text: text.to_string(),
            hint: hint.into(),
        }
    }
}

/// A signal, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalName(pub Signal);

impl FromStr for SignalName {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        Signal::from_str(text)
            .map(SignalName)
            .map_err(|_| UnknownName::new("signal", text, "write it like SIGCHLD"))
    }
}

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// A raw signal number's name, for messages: "SIGSEGV", or "signal 64".
pub fn signal_name(signo: i32) -> String {
    Signal::try_from(signo).map_or(format!("signal {signo}"), |s| s.as_str().to_string())
}

/// An errno value, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrnoName(pub Errno);

impl FromStr for ErrnoName {
    type Err = UnknownName;
    fn from_str(text: &str) -> Result<Self, UnknownName> {
        // nix names every errno through Debug; the table is small enough to scan.
        (1..200)
            .map(Errno::from_raw)
            .find(|e| *e != Errno::UnknownErrno && format!("{e:?}") == text)
            .map(ErrnoName)
            .ok_or_else(|| UnknownName::new("errno", text, "write it like EINVAL"))
    }
}

impl fmt::Display for ErrnoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// Defines a string-named enum whose names are the kernel's, with the raw value beside each.
macro_rules! kernel_flags {
    ($(#[$meta:meta])* $name:ident: $what:literal { $($variant:ident = $text:literal => $value:expr),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The kernel's name for it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The raw value the syscall takes.
            pub fn raw(self) -> i64 {
                match self { $($name::$variant => $value),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(text: &str) -> Result<Self, UnknownName> {
                match text {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName::new(
                        $what,
                        text,
                        format!("one of {}", [$($text),+].join(", ")),
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        serde_by_name!($name);
    };
}

/// Serde through `FromStr`/`Display`, so files and the agent protocol use names.
macro_rules! serde_by_name {
    ($name:ident) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(de::Error::custom)
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

serde_by_name!(SignalName);
serde_by_name!(ErrnoName);

// Values from include/uapi/linux/memfd.h and fcntl.h; nix and libc lack some of the newer ones.
kernel_flags!(
    /// A memfd_create(2) flag.
    MfdFlag: "memfd_create flag" {
        Cloexec = "MFD_CLOEXEC" => 0x0001,
        AllowSealing = "MFD_ALLOW_SEALING" => 0x0002,
        Hugetlb = "MFD_HUGETLB" => 0x0004,
        NoexecSeal = "MFD_NOEXEC_SEAL" => 0x0008,
        Exec = "MFD_EXEC" => 0x0010,
    }
);

kernel_flags!(
    /// A file seal for fcntl(F_ADD_SEALS).
    Seal: "seal" {
        Seal = "F_SEAL_SEAL" => 0x0001,
        Shrink = "F_SEAL_SHRINK" => 0x0002,
        Grow = "F_SEAL_GROW" => 0x0004,
        Write = "F_SEAL_WRITE" => 0x0008,
        FutureWrite = "F_SEAL_FUTURE_WRITE" => 0x0010,
        Exec = "F_SEAL_EXEC" => 0x0020,
    }
);

kernel_flags!(
    /// A wait(2) option.
    WaitFlag: "wait flag" {
        NoHang = "WNOHANG" => 0x0000_0001,
        Untraced = "WUNTRACED" => 0x0000_0002,
        Exited = "WEXITED" => 0x0000_0004,
        Continued = "WCONTINUED" => 0x0000_0008,
        NoWait = "WNOWAIT" => 0x0100_0000,
        NoThread = "__WNOTHREAD" => 0x2000_0000,
        All = "__WALL" => 0x4000_0000,
        Clone = "__WCLONE" => 0x8000_0000,
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("SIGCHLD", Signal::SIGCHLD)]
    #[case("SIGKILL", Signal::SIGKILL)]
    #[case("SIGUSR1", Signal::SIGUSR1)]
    fn signals_by_name(#[case] text: &str, #[case] signal: Signal) {
        assert_eq!(text.parse::<SignalName>().unwrap().0, signal);
    }

    #[rstest]
    #[case("EINVAL", Errno::EINVAL)]
    #[case("ECHILD", Errno::ECHILD)]
    #[case("EFAULT", Errno::EFAULT)]
    #[case("EPERM", Errno::EPERM)]
    fn errnos_by_name(#[case] text: &str, #[case] errno: Errno) {
        assert_eq!(text.parse::<ErrnoName>().unwrap().0, errno);
        assert_eq!(ErrnoName(errno).to_string(), text);
    }

    #[rstest]
    #[case("SIGFOO")]
    #[case("sigchld")]
    #[case("9")]
    fn unknown_signals_are_rejected(#[case] text: &str) {
        assert!(text.parse::<SignalName>().is_err());
    }

    #[test]
    fn flag_values_match_nix_where_nix_has_them() {
        use nix::sys::memfd::MFdFlags;
        assert_eq!(
            MfdFlag::Cloexec.raw(),
            i64::from(MFdFlags::MFD_CLOEXEC.bits())
        );
        assert_eq!(
            MfdFlag::AllowSealing.raw(),
            i64::from(MFdFlags::MFD_ALLOW_SEALING.bits())
        );
        assert_eq!(
            MfdFlag::Hugetlb.raw(),
            i64::from(MFdFlags::MFD_HUGETLB.bits())
        );
    }
}
