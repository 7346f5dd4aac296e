//! A small browser over Rocket's local client: it keeps cookies and the latest form token as a
//! browser without JavaScript would, and builds multipart bodies.

use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

/// What a request answered.
#[derive(Debug)]
pub struct Page {
    pub status: Status,
    pub body: String,
    pub location: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Page {
    /// Panics unless the page has this status.
    pub fn expect(self, status: Status) -> Page {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client that keeps its cookies and the latest form token, as a browser without JavaScript would.
pub struct Browser<'c> {
    client: &'c Client,
    cookies: Vec<Cookie<'static>>,
    pub csrf: Option<String>,
    /// The client address its forms come from (none: Rocket's local client has no peer).
    pub remote: Option<std::net::SocketAddr>,
}

impl<'c> Browser<'c> {
    /// A browser with no cookies yet, on any client.
    pub fn on(client: &'c Client) -> Browser<'c> {
        Browser {
            client,
            cookies: Vec::new(),
            csrf: None,
            remote: None,
        }
    }

    async fn finish(&mut self, response: LocalResponse<'_>) -> Page {
        for cookie in response.cookies().iter() {
            self.cookies.retain(|c| c.name() != cookie.name());
            let removed = cookie.value().is_empty()
                || cookie
                    .max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
            if !removed {
                self.cookies.push(cookie.clone().into_owned());
            }
        }
        let status = response.status();
        let location = response.headers().get_one("Location").map(str::to_string);
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        let body = response.into_string().await.unwrap_or_default();
        if let Some(token) = body
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            self.csrf = Some(token.to_string());
        }
        Page {
            status,
            body,
            location,
            headers,
        }
    }

    /// Holds one more cookie (replacing any of the same name).
    pub fn add_cookie(&mut self, cookie: Cookie<'static>) {
        self.cookies.retain(|c| c.name() != cookie.name());
        self.cookies.push(cookie);
    }

    /// The cookies this browser holds.
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        self.cookies.clone()
    }

    /// GET a path.
    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(path.to_string())
            .cookies(self.cookies.clone())
            .dispatch()
            .await;
        self.finish(response).await
    }

    /// POST a form with the latest form token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POST a multipart form with the latest form token as its first field.
    pub async fn upload(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![Part::text("csrf", &csrf)];
        all.extend(parts.iter().map(|p| Part {
            name: p.name,
            file_name: p.file_name,
            content: p.content.clone(),
        }));
        self.post_bytes(path, multipart(&all)).await
    }

    /// POST raw bytes as multipart/form-data.
    pub async fn post_bytes(&mut self, path: &str, body: Vec<u8>) -> Page {
        let content_type =
            ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY));
        let response = self
            .client
            .post(path.to_string())
            .header(content_type)
            .cookies(self.cookies.clone())
            .body(body)
            .dispatch()
            .await;
        self.finish(response).await
    }

    /// GET with extra headers, returning the body as bytes.
    pub async fn get_bytes(
        &mut self,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> (Page, Vec<u8>) {
        let mut request = self
            .client
            .get(path.to_string())
            .cookies(self.cookies.clone());
        for (name, value) in headers {
            request = request.header(rocket::http::Header::new(*name, value.to_string()));
        }
        let response = request.dispatch().await;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        let bytes = response.into_bytes().await.unwrap_or_default();
        (
            Page {
                status,
                body: String::new(),
                location: None,
                headers,
            },
            bytes,
        )
    }

    /// POST a form exactly as given (no form token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .client
            .post(path.to_string())
            .header(ContentType::Form)
            .cookies(self.cookies.clone())
            .body(body);
        if let Some(remote) = self.remote {
            request = request.remote(remote);
        }
        let response = request.dispatch().await;
        self.finish(response).await
    }
}

/// One part of a multipart form.
pub struct Part<'a> {
    pub name: &'a str,
    pub file_name: Option<&'a str>,
    pub content: Vec<u8>,
}

impl<'a> Part<'a> {
    /// A plain field.
    pub fn text(name: &'a str, value: &str) -> Part<'a> {
        Part {
            name,
            file_name: None,
            content: value.as_bytes().to_vec(),
        }
    }

    /// A file field.
    pub fn file(file_name: &'a str, content: impl Into<Vec<u8>>) -> Part<'a> {
        Part {
            name: "file",
            file_name: Some(file_name),
            content: content.into(),
        }
    }
}

/// The boundary test uploads use.
pub const BOUNDARY: &str = "confab-test-boundary-7MA4YWxkTrZu0gW";

/// Encodes a multipart/form-data body.
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part.file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    part.name,
                    file_name.replace('"', "%22").replace('\n', "%0A").replace('\r', "%0D")
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", part.name).as_bytes()),
        }
        body.extend_from_slice(&part.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Percent-encodes a form value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The ids of the messages on a room page, in page order.
pub fn message_ids(body: &str) -> Vec<i64> {
    body.split(r#"<li class="message"#)
        .skip(1)
        .filter_map(|rest| {
            rest.split(r#"id="m"#)
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The token of the one-time link an admin page shows (Tera escapes its slashes).
pub fn one_time_link(body: &str) -> String {
    let body = body.replace("&#x2F;", "/");
    let token = body
        .split("/password/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a one-time link");
    token.to_string()
}
