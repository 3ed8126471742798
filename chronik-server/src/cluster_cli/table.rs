//! Plain-text tables for the human output of the cluster subcommands: left-aligned columns padded to
//! their widest cell, two spaces apart, no trailing blanks (easy to read and to `awk`).

/// Renders `rows` under `headers`; a row shorter than the header leaves its last cells empty.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let mut line = String::new();
        for (i, width) in widths.iter().enumerate() {
            let cell = row.get(i).map(String::as_str).unwrap_or("");
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `[1, 2, 3]` → `1,2,3` (compact for replica and ISR columns).
pub fn ids(list: &[u64]) -> String {
    list.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let t = render(&["ID", "ADDR"], &[vec!["1".into(), "localhost:10001".into()], vec!["12".into(), "h:1".into()]]);
        assert_eq!(t, "ID  ADDR\n1   localhost:10001\n12  h:1\n");
    }

    #[test]
    fn short_rows_leave_cells_empty() {
        let t = render(&["A", "B", "C"], &[vec!["x".into()]]);
        assert_eq!(t, "A  B  C\nx\n");
    }

    #[test]
    fn ids_join_with_commas() {
        assert_eq!(ids(&[3, 1, 2]), "3,1,2");
        assert_eq!(ids(&[]), "");
    }
}
