//! Plain-text tables for terminal output: columns padded to their widest cell, two spaces
//! apart, no trailing spaces.

/// Render `header` and `rows` (each row as many cells as the header).
pub fn render<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.as_ref().chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(AsRef::as_ref)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn columns_line_up() {
        let out = super::render(
            &["id", "status"],
            &[vec!["ISA-0001", "live"], vec!["X", "overdue"]],
        );
        assert_eq!(out, "id        status\nISA-0001  live\nX         overdue\n");
    }
}
