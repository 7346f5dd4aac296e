//! The file store under `uploads_dir`: uploads stream into `tmp/`, and move to a random, sharded
//! name (`ab/cd/abcd…`) only once their database row has committed. Thumbnails sit beside their
//! file. Nothing here is ever served as a static folder.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Where uploaded files live.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    /// Temporary files still being written: never swept, however slowly they arrive.
    writing: Arc<Mutex<HashSet<PathBuf>>>,
}

/// A temporary upload being received. The sweep leaves it alone while it lives; dropping it removes
/// the file unless it was kept (its row committed).
#[derive(Debug)]
pub struct TempUpload {
    path: PathBuf,
    remove: bool,
    writing: Arc<Mutex<HashSet<PathBuf>>>,
}

impl TempUpload {
    /// The row committed: the file stays (to be moved into place, or by the sweep).
    pub fn keep(mut self) {
        self.remove = false;
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if self.remove {
            if let Err(e) = std::fs::remove_file(&self.path) {
                if e.kind() != io::ErrorKind::NotFound {
                    log::warn!("removing {}: {e}", self.path.display());
                }
            }
        }
        if let Ok(mut writing) = self.writing.lock() {
            writing.remove(&self.path);
        }
    }
}

/// The largest image, in pixels, that gets a thumbnail; anything bigger may be a decompression bomb.
const MAX_THUMBNAIL_SOURCE_PIXELS: u64 = 50_000_000;
/// The box thumbnails fit in.
const THUMBNAIL_BOX: (u32, u32) = (800, 600);

impl FileStore {
    /// A store rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore {
            root: root.into(),
            writing: Arc::default(),
        }
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh random stored name, sharded by its first four hex digits.
    pub fn new_stored_name() -> String {
        let random = crate::secrets::random_token();
        format!("{}/{}/{random}", &random[..2], &random[2..4])
    }

    /// Where an upload streams to before its row commits.
    pub fn temp_path(&self, stored_name: &str) -> PathBuf {
        let leaf = stored_name.rsplit('/').next().unwrap_or(stored_name);
        self.tmp_dir().join(format!("{leaf}.part"))
    }

    /// The stored name a temporary file would become, if it is one of ours.
    fn stored_name_of_temp(path: &Path) -> Option<String> {
        let leaf = path.file_name()?.to_str()?.strip_suffix(".part")?;
        (leaf.len() == 64 && leaf.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| format!("{}/{}/{leaf}", &leaf[..2], &leaf[2..4]))
    }

    /// Where a stored file lives.
    pub fn path(&self, stored_name: &str) -> PathBuf {
        self.root.join(stored_name)
    }

    /// Where a stored file's thumbnail lives.
    pub fn thumbnail_path(&self, stored_name: &str) -> PathBuf {
        self.root.join(format!("{stored_name}.thumb"))
    }

    /// Creates the temporary folder and an empty temporary file for a new upload, with the guard
    /// that keeps the sweep away from it and removes it if the upload fails.
    pub async fn create_temp(
        &self,
        stored_name: &str,
    ) -> io::Result<(tokio::fs::File, TempUpload)> {
        tokio::fs::create_dir_all(self.tmp_dir()).await?;
        let path = self.temp_path(stored_name);
        if let Ok(mut writing) = self.writing.lock() {
            writing.insert(path.clone());
        }
        let guard = TempUpload {
            path: path.clone(),
            remove: true,
            writing: self.writing.clone(),
        };
        let file = tokio::fs::File::create(&path).await?;
        Ok((file, guard))
    }

    /// Marks a temporary file as just written, so that the sweep (of this or another process)
    /// leaves it alone for another `stale_secs` (an import copies a room's files before its one
    /// transaction, which may come long after the first copy).
    pub async fn touch_temp(&self, stored_name: &str) -> io::Result<()> {
        let path = self.temp_path(stored_name);
        tokio::task::spawn_blocking(move || {
            std::fs::File::options()
                .write(true)
                .open(path)?
                .set_modified(SystemTime::now())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Moves a committed upload from `tmp/` to its place.
    pub async fn finish(&self, stored_name: &str) -> io::Result<()> {
        let target = self.path(stored_name);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::rename(self.temp_path(stored_name), target).await
    }

    /// Removes a stored file and its thumbnail; missing files are fine.
    pub async fn remove(&self, stored_name: &str) -> io::Result<()> {
        for path in [self.path(stored_name), self.thumbnail_path(stored_name)] {
            match tokio::fs::remove_file(&path).await {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// Temporary files not written to for `stale_after` and not being received now, each with the
    /// stored name it was meant for.
    pub fn stale_temp_files(
        &self,
        stale_after: Duration,
    ) -> io::Result<Vec<(PathBuf, Option<String>)>> {
        let entries = match std::fs::read_dir(self.tmp_dir()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let now = SystemTime::now();
        let writing = self.writing.lock().map(|w| w.clone()).unwrap_or_default();
        let mut stale = Vec::new();
        for entry in entries.flatten() {
            if writing.contains(&entry.path()) {
                continue;
            }
            let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(now);
            if now.duration_since(modified).unwrap_or_default() >= stale_after {
                let path = entry.path();
                let stored = Self::stored_name_of_temp(&path);
                stale.push((path, stored));
            }
        }
        Ok(stale)
    }

    /// Makes the thumbnail of an image file (blocking: run it off the async runtime). Returns its
    /// content type, or `None` when the file is not an image that can be decoded safely.
    pub fn make_thumbnail(&self, stored_name: &str) -> Option<&'static str> {
        let (image, format) = decode_image(&self.path(stored_name))?;
        let (width, height) = (image.width(), image.height());
        let image = if width > THUMBNAIL_BOX.0 || height > THUMBNAIL_BOX.1 {
            image.resize(
                THUMBNAIL_BOX.0,
                THUMBNAIL_BOX.1,
                image::imageops::FilterType::Triangle,
            )
        } else {
            image
        };
        let (encoded_as, content_type) = match format {
            image::ImageFormat::Jpeg => (image::ImageFormat::Jpeg, "image/jpeg"),
            _ => (image::ImageFormat::Png, "image/png"),
        };
        let target = self.thumbnail_path(stored_name);
        let partial = target.with_extension("thumb.part");
        let image = if encoded_as == image::ImageFormat::Jpeg {
            image::DynamicImage::ImageRgb8(image.to_rgb8())
        } else {
            image
        };
        image.save_with_format(&partial, encoded_as).ok()?;
        std::fs::rename(&partial, &target).ok()?;
        Some(content_type)
    }
}

/// Decodes an image file whose size its header gives as at most [`MAX_THUMBNAIL_SOURCE_PIXELS`],
/// with allocation limits (blocking); `None` for anything else, decompression bombs included.
fn decode_image(source: &Path) -> Option<(image::DynamicImage, image::ImageFormat)> {
    let reader = image::ImageReader::open(source)
        .ok()?
        .with_guessed_format()
        .ok()?;
    let format = reader.format()?;
    let (width, height) = image::ImageReader::open(source)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()?;
    if u64::from(width) * u64::from(height) > MAX_THUMBNAIL_SOURCE_PIXELS {
        return None;
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    Some((reader.decode().ok()?, format))
}

/// The side of a member's picture, in pixels (shown at 32 CSS pixels, sharp on dense screens).
pub const AVATAR_SIDE: u32 = 128;

/// A member's picture from an uploaded image: its centre cropped square and scaled to
/// [`AVATAR_SIDE`], as PNG (blocking). `None` when the file is not an image that decodes safely.
pub fn avatar_png(source: &Path) -> Option<Vec<u8>> {
    let (image, _) = decode_image(source)?;
    let square = image.resize_to_fill(
        AVATAR_SIDE,
        AVATAR_SIDE,
        image::imageops::FilterType::Triangle,
    );
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgba8(square.to_rgba8())
        .write_to(&mut png, image::ImageFormat::Png)
        .ok()?;
    Some(png.into_inner())
}

/// Reads an image's dimensions from its header only (blocking).
pub fn image_dimensions(path: &Path) -> Option<(u32, u32)> {
    image::ImageReader::open(path)
        .ok()?
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()
}

/// The content type of a file, detected from its first bytes (never the client's claim).
pub fn detect_content_type(head: &[u8]) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_string();
    }
    match std::str::from_utf8(head) {
        // A character cut off at the end of the sniffed bytes still counts as text.
        Ok(_) => "text/plain; charset=utf-8".to_string(),
        Err(e) if e.error_len().is_none() => "text/plain; charset=utf-8".to_string(),
        Err(_) => "application/octet-stream".to_string(),
    }
}

/// Whether a browser may show this type inline: raster images only, never SVG or HTML.
pub fn shown_inline(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_come_from_the_bytes() {
        assert_eq!(
            detect_content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            "image/png"
        );
        assert_eq!(
            detect_content_type(b"\xff\xd8\xff\xe0\0\x10JFIF"),
            "image/jpeg"
        );
        assert_eq!(
            detect_content_type(b"hello world"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            detect_content_type(&[0, 159, 146, 150, 1, 2]),
            "application/octet-stream"
        );
        assert!(
            !shown_inline("image/svg+xml")
                && !shown_inline("text/html")
                && shown_inline("image/webp")
        );
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A tiny PNG whose header claims a huge image: decoding it would try to allocate gigabytes.
    fn png_bomb(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            png.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let mut body = kind.to_vec();
            body.extend_from_slice(data);
            png.extend_from_slice(&body);
            png.extend_from_slice(&crc32(&body).to_be_bytes());
        };
        let mut ihdr = Vec::new();
        ihdr.extend_from_slice(&width.to_be_bytes());
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
        chunk(b"IEND", &[]);
        png
    }

    #[test]
    fn decompression_bombs_and_garbage_get_no_thumbnail() {
        let dir = tempfile::tempdir().expect("dir");
        let store = FileStore::new(dir.path());
        for (bytes, why) in [
            (png_bomb(100_000, 100_000), "bomb"),
            (b"\x89PNG\r\n\x1a\ngarbage".to_vec(), "garbage"),
        ] {
            let name = FileStore::new_stored_name();
            let path = store.path(&name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
            std::fs::write(&path, bytes).expect("write");
            assert_eq!(store.make_thumbnail(&name), None, "{why}");
            assert!(!store.thumbnail_path(&name).exists(), "{why}");
        }
        assert_eq!(image_dimensions(&dir.path().join("missing")), None);
    }

    #[test]
    fn temp_names_map_back_to_stored_names() {
        let name = FileStore::new_stored_name();
        let store = FileStore::new("/x");
        assert_eq!(
            FileStore::stored_name_of_temp(&store.temp_path(&name)),
            Some(name)
        );
        assert_eq!(
            FileStore::stored_name_of_temp(Path::new("/x/tmp/evil.part")),
            None
        );
    }
}
