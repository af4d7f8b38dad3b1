//! How Telegram reads a message's HTML: the text it shows, or the parse error it answers with
//! (the fake's check of what the bot sends with `parse_mode: HTML`).

/// The text Telegram would show for `html`, or why it cannot parse it.
pub fn visible_text(html: &str) -> Result<String, String> {
    const ALLOWED: &[&str] = &[
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "code",
        "pre",
        "a",
        "blockquote",
        "tg-spoiler",
        "span",
    ];
    let mut out = String::new();
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('&') {
            let end = rest.find(';').ok_or("unclosed entity")?;
            out.push_str(match &rest[..=end] {
                "&amp;" => "&",
                "&lt;" => "<",
                "&gt;" => ">",
                "&quot;" => "\"",
                e => return Err(format!("unsupported entity {e}")),
            });
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').ok_or("unclosed tag")?;
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop().as_deref() != Some(name.trim()) {
                return Err(format!(
                    "can't find end tag corresponding to start tag or unexpected end tag {name}"
                ));
            }
        } else {
            let name = tag.split_whitespace().next().unwrap_or("").to_string();
            if !ALLOWED.contains(&name.as_str()) {
                return Err(format!("unsupported start tag \"{name}\""));
            }
            stack.push(name);
        }
    }
    out.push_str(rest);
    if let Some(open) = stack.pop() {
        return Err(format!(
            "can't find end tag corresponding to start tag \"{open}\""
        ));
    }
    Ok(out)
}
