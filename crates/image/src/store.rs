//! Image bytes on disk: `<image_dir>/<id>`, written through a temporary file
//! while MD5 (`checksum`) and SHA-512 (`os_hash_value`) are computed, then
//! renamed into place so a reader never sees half an image.

use crate::ImageError;
use md5::Digest;
use sha2::Sha512;
use std::path::{Path, PathBuf};
use stratus_types::ImageId;
use stratus_types::image::DiskFormat;
use tokio::io::AsyncWriteExt;

/// Largest accepted upload (Glance's default `image_size_cap` is 1 TiB).
pub const MAX_IMAGE_SIZE: u64 = 1 << 40;

/// Where an image's bytes live; `None` for ids that are not plain UUIDs
/// (which never name a file).
pub fn data_path(dir: &Path, id: &ImageId) -> PathBuf {
    dir.join(id.to_string())
}

/// SHA-512 hex of `data` (Glance's `os_hash_value`), to tell whether stored
/// bytes already are these.
pub(crate) fn sha512_hex(data: &[u8]) -> String {
    hex::encode(Sha512::digest(data))
}

/// Writes image bytes to a temporary file while hashing them; `finish`
/// moves the file into place, dropping it unfinished removes it.
pub(crate) struct DataWriter {
    file: Option<tokio::fs::File>,
    part: PathBuf,
    dest: PathBuf,
    size: u64,
    md5: md5::Md5,
    sha512: Sha512,
}

/// Size and hex digests of stored image data.
pub(crate) struct Stored {
    pub size: i64,
    pub md5: String,
    pub sha512: String,
}

impl DataWriter {
    /// Open a temporary file for image `id` in `dir`.
    pub async fn create(dir: &Path, id: &ImageId) -> Result<Self, ImageError> {
        let dest = data_path(dir, id);
        tokio::fs::create_dir_all(dir).await.map_err(|e| ImageError::io("creating the image directory", e))?;
        let part = dir.join(format!("{id}.part-{}", uuid::Uuid::new_v4().simple()));
        let file = tokio::fs::File::create(&part).await.map_err(|e| ImageError::io("creating image data file", e))?;
        Ok(Self { file: Some(file), part, dest, size: 0, md5: md5::Md5::new(), sha512: Sha512::new() })
    }

    /// Append and hash one chunk, refusing data over [`MAX_IMAGE_SIZE`].
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), ImageError> {
        self.size += chunk.len() as u64;
        if self.size > MAX_IMAGE_SIZE {
            return Err(ImageError::TooLarge(format!("Image data exceeds the size limit of {MAX_IMAGE_SIZE} bytes.")));
        }
        self.md5.update(chunk);
        self.sha512.update(chunk);
        let file = self.file.as_mut().ok_or_else(|| ImageError::Internal("image data file already closed".into()))?;
        file.write_all(chunk).await.map_err(|e| ImageError::io("writing image data", e))
    }

    /// Sync the file and move it into place. With `inspect`, the bytes are
    /// first checked by the format inspector to be a safe image of that
    /// `disk_format` ([`ImageError::InvalidData`] otherwise, and the data is
    /// dropped): an image that would make `qemu-img` read other files never
    /// becomes active.
    pub async fn finish(mut self, inspect: Option<DiskFormat>) -> Result<Stored, ImageError> {
        let file = self.file.as_mut().ok_or_else(|| ImageError::Internal("image data file already closed".into()))?;
        file.flush().await.map_err(|e| ImageError::io("flushing image data", e))?;
        file.sync_all().await.map_err(|e| ImageError::io("syncing image data", e))?;
        if let Some(disk_format) = inspect {
            let part = self.part.clone();
            let checked = tokio::task::spawn_blocking(move || stratus_imageformat::check(&part, disk_format))
                .await
                .map_err(|e| ImageError::Internal(format!("image inspection did not finish: {e}")))?;
            match checked {
                Ok(_) => {}
                Err(stratus_imageformat::InspectError::Io(e)) => {
                    return Err(ImageError::io("inspecting image data", e));
                }
                Err(e) => return Err(ImageError::InvalidData(e.to_string())),
            }
        }
        tokio::fs::rename(&self.part, &self.dest)
            .await
            .map_err(|e| ImageError::io("moving image data into place", e))?;
        // In place now: nothing left for `drop` to clean up.
        self.file = None;
        let size = i64::try_from(self.size).map_err(|_| ImageError::TooLarge("Image data is too large.".into()))?;
        Ok(Stored {
            size,
            md5: hex::encode(self.md5.clone().finalize()),
            sha512: hex::encode(self.sha512.clone().finalize()),
        })
    }
}

impl Drop for DataWriter {
    fn drop(&mut self) {
        // Unfinished (error or client gone): the partial file goes.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.part);
        }
    }
}
