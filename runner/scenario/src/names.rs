//! Names of processes, threads and handles in a scenario.
//!
//! Names are checked while the file is deserialized, not afterwards, because
//! only then does yaml_serde know the line and column to blame. `parse` opens a
//! scope; each `spawn` (or handle-creating step) declares a name as it is read,
//! in file order, and every reference must name something declared earlier.
//! Outside a scope (the agent decoding its instructions) nothing is checked.

use serde::{de, Deserialize, Deserializer, Serialize};
use std::cell::RefCell;
use std::fmt;

/// The agent's own process when the scenario runs in a fresh pid namespace: its init.
pub const ROOT_IN_FRESH_NAMESPACE: &str = "init";
/// The agent's own process when the scenario runs in the caller's pid namespace.
pub const ROOT_IN_CALLER_NAMESPACE: &str = "agent";
const RESERVED: &[&str] = &[ROOT_IN_FRESH_NAMESPACE, ROOT_IN_CALLER_NAMESPACE, "any"];

#[derive(Default)]
struct Scope {
    actors: Vec<String>,
    handles: Vec<String>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// Runs `f` with name checking on, starting from an empty scope.
pub(crate) fn with_scope<T>(f: impl FnOnce() -> T) -> T {
    SCOPE.with(|s| *s.borrow_mut() = Some(Scope::default()));
    let result = f();
    SCOPE.with(|s| *s.borrow_mut() = None);
    result
}

/// A process or handle name a scenario cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("bad {what} name `{name}`: use lowercase letters, digits and _, starting with a letter, at most 32 long")]
    Malformed { what: &'static str, name: String },
    /// `known` lists what is spawned so far.
    #[error(
        "undefined process `{name}` ({known}; the agent itself is `{ROOT_IN_FRESH_NAMESPACE}`)"
    )]
    Undefined { name: String, known: String },
}

fn check_identifier(name: &str, what: &'static str) -> Result<(), NameError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !first_ok || !rest_ok || name.len() > 32 {
        return Err(NameError::Malformed {
            what,
            name: name.to_string(),
        });
    }
    Ok(())
}

macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }
    };
}

name_type!(
    /// A process or thread being declared by a `spawn` step.
    NewName
);
name_type!(
    /// A reference to a process or thread declared earlier, or to the agent's root.
    ActorRef
);
name_type!(
    /// A handle (memfd, mapping, pidfd) being declared.
    NewHandle
);
name_type!(
    /// A reference to a handle declared earlier.
    HandleRef
);

impl<'de> Deserialize<'de> for NewName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SCOPE.with(|s| match s.borrow_mut().as_mut() {
            None => Ok(NewName(name)),
            Some(scope) => {
                check_identifier(&name, "process").map_err(de::Error::custom)?;
                if RESERVED.contains(&name.as_str()) {
                    return Err(de::Error::custom(format!(
                        "`{name}` is reserved: it names the agent's own process"
                    )));
                }
                if scope.actors.contains(&name) {
                    return Err(de::Error::custom(format!(
                        "process `{name}` is spawned twice"
                    )));
                }
                scope.actors.push(name.clone());
                Ok(NewName(name))
            }
        })
    }
}

/// Checks that `name` refers to the agent's root or to a process spawned earlier.
pub(crate) fn check_actor_ref(name: &str) -> Result<(), NameError> {
    SCOPE.with(|s| match s.borrow().as_ref() {
        None => Ok(()),
        Some(scope) => {
            let is_root = name == ROOT_IN_FRESH_NAMESPACE || name == ROOT_IN_CALLER_NAMESPACE;
            if is_root || scope.actors.iter().any(|a| a == name) {
                return Ok(());
            }
            let known = if scope.actors.is_empty() {
                "nothing is spawned yet".to_string()
            } else {
                format!("spawned so far: {}", scope.actors.join(", "))
            };
            Err(NameError::Undefined {
                name: name.to_string(),
                known,
            })
        }
    })
}

impl<'de> Deserialize<'de> for ActorRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        check_actor_ref(&name).map_err(de::Error::custom)?;
        Ok(ActorRef(name))
    }
}

impl<'de> Deserialize<'de> for NewHandle {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SCOPE.with(|s| match s.borrow_mut().as_mut() {
            None => Ok(NewHandle(name)),
            Some(scope) => {
                check_identifier(&name, "handle").map_err(de::Error::custom)?;
                if scope.handles.contains(&name) {
                    return Err(de::Error::custom(format!(
                        "handle `{name}` is declared twice"
                    )));
                }
                scope.handles.push(name.clone());
                Ok(NewHandle(name))
            }
        })
    }
}

impl<'de> Deserialize<'de> for HandleRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        SCOPE.with(|s| match s.borrow().as_ref() {
            Some(scope) if !scope.handles.contains(&name) => Err(de::Error::custom(format!(
                "undefined handle `{name}` (declare it with memfd_create, mmap or pidfd_open first)"
            ))),
            _ => Ok(HandleRef(name)),
        })
    }
}
