//! An error as a person reads it: its own message, then each cause's, `: `-separated.
//!
//! gma's errors say only their own context and return the error they wrap as their source, so
//! their `Display` never repeats a cause. Every place that turns an error into text for a person
//! or a table (a log field, an HTTP body, a status row, the CLI's last line) prints the chain.

use std::error::Error;

/// `error` and its sources, `outer: cause: root`. A cause whose text the text so far already
/// ends with is left out: some libraries' errors print their source (`context: {source}`) and
/// also return it. A cause that merely appears somewhere earlier is kept.
pub fn error_chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the log")]
    struct Outer(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error("compacting: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn prints_each_cause_once() {
        let io = || std::io::Error::other("disk full");
        assert_eq!(error_chain(&Outer(io())), "reading the log: disk full");
        assert_eq!(error_chain(&Repeats(io())), "compacting: disk full");
        assert_eq!(error_chain(&io()), "disk full");
    }
}
