//! Prompts in the console: every language's recordings, played in the browser, and an upload
//! (WAV or MP3) decoded and checked as the API's is before it replaces anything; callers
//! hear it on their next playback.

use std::fmt::Write;

use axum::body::Bytes;
use axum::extract::{Multipart, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use talktime_engine::Language;

use super::pages::{csrf_field, escape, page};
use super::{ConsoleError, ConsoleState, LoggedIn};
use crate::admin_http::AdminError;
use crate::server::wall_clock_ms;

/// Largest upload (about 10 minutes of 16-bit 8 kHz WAV), as the API's.
pub const UPLOAD_LIMIT_BYTES: usize = 16 << 20;

/// Each language's prompt files (name, extension), by name.
fn listed(prompts_dir: &std::path::Path) -> Vec<(Language, Vec<(String, String)>)> {
    crate::startup::prompt_languages(prompts_dir)
        .into_iter()
        .map(|language| {
            let mut files: Vec<(String, String)> =
                std::fs::read_dir(prompts_dir.join(language.code()))
                    .map(|entries| {
                        entries
                            .flatten()
                            .filter_map(|entry| {
                                let path = entry.path();
                                let extension = path.extension()?.to_str()?.to_ascii_lowercase();
                                let stem = path.file_stem()?.to_str()?.to_owned();
                                let audio = extension == "wav" || extension == "mp3";
                                (audio && !stem.starts_with('.')).then_some((stem, extension))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
            files.sort();
            (language, files)
        })
        .collect()
}

fn prompts_html(
    user: &LoggedIn,
    prompts_dir: &std::path::Path,
    error: Option<(&str, &str)>,
) -> String {
    let mut body = String::new();
    for (language, files) in listed(prompts_dir) {
        let _ = write!(
            body,
            "<h2>{}</h2><table class=\"prompts\" data-language=\"{}\"><tbody>",
            language.code(),
            language.code()
        );
        for (name, extension) in files {
            let name = escape(&name);
            let _ = write!(
                body,
                "<tr class=\"prompt\"><td>{name}</td><td>{extension}</td><td><audio controls \
                 preload=\"none\" src=\"/console/prompts/{}/{name}.{extension}\"></audio></td></tr>",
                language.code()
            );
        }
        body.push_str("</tbody></table>");
    }
    if super::auth::may_change(&user.user) {
        let message = error
            .map(|(field, text)| {
                format!(
                    "<p class=\"error\" id=\"error-{field}\">{}</p>",
                    escape(text)
                )
            })
            .unwrap_or_default();
        let options: String = crate::startup::prompt_languages(prompts_dir)
            .iter()
            .map(|language| format!("<option>{}</option>", language.code()))
            .collect();
        let _ = write!(
            body,
            "<h2>Upload a prompt</h2>{message}<form method=\"post\" action=\"/console/prompts\" \
             enctype=\"multipart/form-data\">{}<p><label>Language <select name=\"language\" \
             id=\"language\">{options}</select></label></p><p><label>Name (a-z, 0-9, _ and -) \
             <input name=\"name\" id=\"name\"></label></p><p><label>WAV or MP3 <input \
             type=\"file\" name=\"file\" id=\"file\" accept=\".wav,.mp3,audio/*\"></label></p>\
             <p><button id=\"upload\">Upload</button></p></form>",
            csrf_field(user)
        );
    }
    page("Prompts", Some(user), "", &body)
}

pub async fn prompts_page(
    State(state): State<ConsoleState>,
    user: LoggedIn,
) -> Result<Html<String>, ConsoleError> {
    Ok(Html(prompts_html(&user, &state.prompts_dir, None)))
}

/// One prompt's file, for the page's player.
pub async fn prompt_file(
    State(state): State<ConsoleState>,
    _user: LoggedIn,
    UrlPath((language, file)): UrlPath<(String, String)>,
) -> Result<Response, ConsoleError> {
    let language = Language::from_code(&language).ok_or(ConsoleError::NotFound)?;
    let (name, extension) = file.rsplit_once('.').ok_or(ConsoleError::NotFound)?;
    let content_type = match extension {
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        _ => return Err(ConsoleError::NotFound),
    };
    // Only plain names: nothing outside the language's directory can be named.
    if !crate::admin_http::is_prompt_name(name) {
        return Err(ConsoleError::NotFound);
    }
    let path = state
        .prompts_dir
        .join(language.code())
        .join(format!("{name}.{extension}"));
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ConsoleError::NotFound)?;
    Ok(([(header::CONTENT_TYPE, content_type)], bytes).into_response())
}

/// The upload form's parts.
#[derive(Default)]
struct Upload {
    csrf: String,
    language: String,
    name: String,
    file: Option<Bytes>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, String> {
    let mut upload = Upload::default();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|error| error.to_string())?
    {
        let part = field.name().unwrap_or_default().to_owned();
        match part.as_str() {
            "file" => upload.file = Some(field.bytes().await.map_err(|e| e.to_string())?),
            "csrf" => upload.csrf = field.text().await.map_err(|e| e.to_string())?,
            "language" => upload.language = field.text().await.map_err(|e| e.to_string())?,
            "name" => upload.name = field.text().await.map_err(|e| e.to_string())?,
            _ => {}
        }
    }
    Ok(upload)
}

pub async fn upload(
    State(state): State<ConsoleState>,
    user: LoggedIn,
    multipart: Multipart,
) -> Result<Response, ConsoleError> {
    let refuse = |field: &str, text: &str| {
        let page = prompts_html(&user, &state.prompts_dir, Some((field, text)));
        Ok((StatusCode::BAD_REQUEST, Html(page)).into_response())
    };
    let upload = match read_upload(multipart).await {
        Ok(upload) => upload,
        Err(error) => return refuse("file", &format!("The upload did not arrive: {error}")),
    };
    user.check_csrf(&upload.csrf)?;
    user.require_change("Your role may not change prompts.")?;
    let Some(file) = upload.file.filter(|file| !file.is_empty()) else {
        return refuse("file", "Choose a WAV or MP3 file.");
    };
    let name = upload.name.trim().to_owned();
    let stored = crate::admin_http::store_prompt(
        &state.prompts_dir,
        &state.core,
        &upload.language,
        &name,
        file,
    )
    .await;
    match stored {
        Ok(stored) => {
            state
                .store
                .audit(
                    Some(&user.user),
                    "prompt_upload",
                    &stored.prompt,
                    None,
                    Some(&format!("{} ms of {}", stored.duration_ms, stored.format)),
                    wall_clock_ms(),
                )
                .await?;
            Ok(Redirect::to("/console/prompts").into_response())
        }
        Err(AdminError::BadRequest(message)) => refuse("name", &message),
        Err(AdminError::NotFound(message)) => refuse("language", &message),
        Err(AdminError::Unprocessable(message)) => {
            refuse("file", &format!("Not audio the IVR can play: {message}"))
        }
        Err(error) => Err(ConsoleError::Internal(error.to_string())),
    }
}
