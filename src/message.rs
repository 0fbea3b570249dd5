//! Parse: raw RFC 5322 bytes into a message the marking stage can read.

/// A message that could not be read as a message: never allowed anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message contains NUL bytes")]
    NulByte,
    #[error("message has no header section")]
    NoHeaders,
    #[error("message could not be parsed as RFC 5322")]
    Unparseable,
}

/// A parsed message, borrowing the raw bytes.
pub struct ParsedMessage<'a> {
    pub raw: &'a [u8],
    pub inner: mail_parser::Message<'a>,
}

/// Parse raw bytes; a message with NUL bytes or without a header section is an error.
pub fn parse(raw: &[u8]) -> Result<ParsedMessage<'_>, MessageError> {
    if raw.contains(&0) {
        return Err(MessageError::NulByte);
    }
    let inner = mail_parser::MessageParser::default()
        .parse(raw)
        .ok_or(MessageError::Unparseable)?;
    if inner.headers().is_empty() {
        return Err(MessageError::NoHeaders);
    }
    Ok(ParsedMessage { raw, inner })
}

/// What the sender declared about the disclosure, from its headers.
pub fn declared(message: &ParsedMessage<'_>) -> crate::decision::Declared {
    let header = |name: &str| {
        message
            .inner
            .header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    };
    crate::decision::Declared {
        purpose: header("X-Disclosure-Purpose"),
        legal_basis: header("X-Legal-Basis"),
        consent: header("X-Consent").map(|c| c.to_ascii_lowercase()),
    }
}

impl ParsedMessage<'_> {
    /// The ISA the sender cites (`X-ISA-Reference`), trimmed; None when absent or empty.
    pub fn isa_reference(&self) -> Option<String> {
        self.inner
            .header_raw("X-ISA-Reference")
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}
