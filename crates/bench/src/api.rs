//! The few OpenStack calls the benchmark makes, as the demo user.

use anyhow::{Context, bail};
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;

/// A server as listed (only what the benchmark looks at).
#[derive(Deserialize)]
pub struct ListedServer {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub fault: Option<Value>,
}

#[derive(Deserialize)]
struct ServerList {
    servers: Vec<ListedServer>,
    #[serde(default)]
    servers_links: Vec<Link>,
}

#[derive(Deserialize)]
struct Link {
    rel: String,
    href: String,
}

/// Outcome of `GET /servers/{id}`.
pub enum Show {
    Gone,
    Present { status: String, fault: Option<Value> },
}

#[derive(Clone)]
pub struct Api {
    http: Client,
    url: String,
    token: String,
}

impl Api {
    /// Authenticate (Keystone v3 password, project-scoped) and keep the token.
    pub async fn login(url: &str, user: &str, password: &str, project: &str) -> anyhow::Result<Self> {
        let http = Client::builder()
            .pool_max_idle_per_host(512)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(120))
            .build()
            .context("http client")?;
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": user, "domain": {"name": "Default"}, "password": password}}}, "scope": {"project": {"name": project, "domain": {"name": "Default"}}}}});
        let r = http
            .post(format!("{url}/identity/v3/auth/tokens"))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("auth request to {url}"))?;
        let status = r.status();
        if status != StatusCode::CREATED {
            bail!("authentication as {user} failed: {status}: {}", r.text().await.unwrap_or_default());
        }
        let token = r
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .context("authentication response has no X-Subject-Token")?
            .to_string();
        Ok(Self { http, url: url.to_string(), token })
    }

    fn get(&self, path_or_url: &str) -> reqwest::RequestBuilder {
        let u = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{path_or_url}", self.url)
        };
        self.http.get(u).header("X-Auth-Token", &self.token)
    }

    /// Any call: `(status, x-openstack-request-id, JSON body or Null)`;
    /// `microversion` sets `X-OpenStack-Nova-API-Version` (admin reads of
    /// instance action events, `forced_down`).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        microversion: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Option<String>, Value)> {
        let mut r =
            self.http.request(method.clone(), format!("{}{path}", self.url)).header("X-Auth-Token", &self.token);
        if let Some(mv) = microversion {
            r = r.header("X-OpenStack-Nova-API-Version", mv);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status();
        let request_id = r.headers().get("x-openstack-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let text = r.text().await.unwrap_or_default();
        let v = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(json!({"text": text}))
        };
        Ok((status, request_id, v))
    }

    /// Id of the `cirros` image.
    pub async fn cirros(&self) -> anyhow::Result<String> {
        let r = self.get("/image/v2/images?name=cirros").send().await.context("GET images")?;
        let status = r.status();
        let v: Value = r.json().await.context("image list body")?;
        if status != StatusCode::OK {
            bail!("GET /image/v2/images?name=cirros: {status}: {v}");
        }
        v["images"][0]["id"].as_str().map(str::to_string).with_context(|| format!("no cirros image: {v}"))
    }

    /// `POST /servers` (flavor `1`); returns the new id.
    pub async fn create_server(&self, name: &str, image: &str) -> anyhow::Result<String> {
        let r = self
            .http
            .post(format!("{}/compute/v2.1/servers", self.url))
            .header("X-Auth-Token", &self.token)
            .json(&json!({"server": {"name": name, "imageRef": image, "flavorRef": "1"}}))
            .send()
            .await
            .with_context(|| format!("POST /servers ({name})"))?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status != StatusCode::ACCEPTED {
            bail!("POST /servers ({name}) returned {status}, expected 202: {text}");
        }
        let v: Value = serde_json::from_str(&text).with_context(|| format!("POST /servers body: {text}"))?;
        v["server"]["id"].as_str().map(str::to_string).with_context(|| format!("POST /servers: no id in {text}"))
    }

    /// `DELETE /servers/{id}`; anything but 204 is an error.
    pub async fn delete_server(&self, id: &str) -> anyhow::Result<()> {
        let r = self
            .http
            .delete(format!("{}/compute/v2.1/servers/{id}", self.url))
            .header("X-Auth-Token", &self.token)
            .send()
            .await
            .with_context(|| format!("DELETE /servers/{id}"))?;
        let status = r.status();
        if status != StatusCode::NO_CONTENT {
            bail!("DELETE /servers/{id} returned {status}, expected 204: {}", r.text().await.unwrap_or_default());
        }
        Ok(())
    }

    /// `GET /servers/{id}`.
    pub async fn show_server(&self, id: &str) -> anyhow::Result<Show> {
        let path = format!("/compute/v2.1/servers/{id}");
        let r = self.get(&path).send().await.with_context(|| format!("GET {path}"))?;
        match r.status() {
            StatusCode::NOT_FOUND => Ok(Show::Gone),
            StatusCode::OK => {
                let v: Value = r.json().await.with_context(|| format!("GET {path} body"))?;
                Ok(Show::Present {
                    status: v["server"]["status"].as_str().unwrap_or_default().to_string(),
                    fault: v["server"].get("fault").cloned(),
                })
            }
            s => bail!("GET {path} returned {s}: {}", r.text().await.unwrap_or_default()),
        }
    }

    /// Every server of the project (`detail` or the plain index), following
    /// `servers_links` if the server pages.
    pub async fn list_servers(&self, detail: bool) -> anyhow::Result<Vec<ListedServer>> {
        let mut next = Some(if detail { "/compute/v2.1/servers/detail" } else { "/compute/v2.1/servers" }.to_string());
        let mut out = Vec::new();
        while let Some(u) = next.take() {
            let r = self.get(&u).send().await.with_context(|| format!("GET {u}"))?;
            let status = r.status();
            if status != StatusCode::OK {
                bail!("GET {u} returned {status}: {}", r.text().await.unwrap_or_default());
            }
            let page: ServerList = r.json().await.with_context(|| format!("GET {u} body"))?;
            out.extend(page.servers);
            next = page.servers_links.into_iter().find(|l| l.rel == "next").map(|l| l.href);
        }
        Ok(out)
    }
}
