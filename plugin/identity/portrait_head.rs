//! Heads made from portraits inside the app: the face models and the construction run on the async compute task
//! pool; the finished head asset is added to `Assets<HeadAsset>`.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};

use super::{
    ConstructSettings, FaceLandmarks, HeadAsset, IdentityError, PortraitFrame, build_head, cache,
    find_face_landmarks, person_mask,
};
use crate::contract::models::PORTRAIT_TO_HEAD;
use crate::head::{HeadSource, TalkingHead};
use crate::inference::ModelRegistry;
use crate::plugin::Models;

/// Where the head of a portrait-based [`TalkingHead`] stands. Added and maintained by the plugin.
#[derive(Component, Debug)]
pub struct PortraitHead {
    portrait: AssetId<Image>,
    state: BuildState,
}

#[derive(Debug)]
enum BuildState {
    Building(Task<Result<HeadAsset, IdentityError>>),
    Built(Handle<HeadAsset>),
    Failed(String),
}

impl PortraitHead {
    /// The head asset, once built.
    pub fn asset(&self) -> Option<&Handle<HeadAsset>> {
        match &self.state {
            BuildState::Built(handle) => Some(handle),
            _ => None,
        }
    }

    /// Whether this build is for `portrait`.
    pub fn portrait_matches(&self, portrait: &Handle<Image>) -> bool {
        self.portrait == portrait.id()
    }

    /// Why the head could not be built, if it could not.
    pub fn failure(&self) -> Option<&str> {
        match &self.state {
            BuildState::Failed(reason) => Some(reason),
            _ => None,
        }
    }
}

/// A head built from a portrait, with the landmarks it was built from and the portrait's mapping to head space.
#[derive(Clone, Debug)]
pub struct BuiltHead {
    /// The head.
    pub asset: HeadAsset,
    /// Portrait pixels ↔ head space.
    pub frame: PortraitFrame,
    /// The face's landmarks in the portrait.
    pub landmarks: FaceLandmarks,
}

/// The whole portrait → head step, no cache: face landmarks (a face turned too far is refused, see
/// [`FaceLandmarks::check_pose`]), person mask, construction with the default settings.
pub fn head_from_portrait(
    registry: &ModelRegistry,
    portrait: &image::DynamicImage,
) -> Result<BuiltHead, IdentityError> {
    let landmarks = find_face_landmarks(registry, portrait)?;
    landmarks.check_pose()?;
    let mask = person_mask(registry, portrait)?;
    let (asset, frame) = build_head(
        portrait,
        &landmarks,
        Some(&mask),
        ConstructSettings::default(),
    );
    Ok(BuiltHead {
        asset,
        frame,
        landmarks,
    })
}

/// Loads the portrait's head from the disk cache, or builds it (and caches it).
fn build(
    registry: &ModelRegistry,
    portrait: &image::DynamicImage,
) -> Result<HeadAsset, IdentityError> {
    let rgba = portrait.to_rgba8();
    let key = cache::portrait_key(rgba.width(), rgba.height(), rgba.as_raw());
    let dir = cache::default_cache_dir();
    if let Some(dir) = &dir {
        match cache::load(dir, &key) {
            Ok(Some(asset)) => return Ok(asset),
            Ok(None) => {}
            Err(error) => warn!("talking_head: rebuilding a cached head: {error}"),
        }
    }
    let BuiltHead { asset, .. } = head_from_portrait(registry, portrait)?;
    if let Some(dir) = &dir
        && let Err(error) = cache::save(dir, &key, &asset)
    {
        warn!(
            "talking_head: could not cache the head in {}: {error}",
            dir.display()
        );
    }
    Ok(asset)
}

/// Starts a build for every portrait head whose portrait has loaded (again when the portrait changes), and
/// collects finished builds.
pub(crate) fn build_portrait_heads(
    mut commands: Commands,
    images: Res<Assets<Image>>,
    models: Option<Res<Models>>,
    mut head_assets: ResMut<Assets<HeadAsset>>,
    mut heads: Query<(Entity, &TalkingHead, Option<&mut PortraitHead>)>,
) {
    for (entity, head, existing) in &mut heads {
        let HeadSource::Portrait(handle) = &head.source else {
            if existing.is_some() {
                commands.entity(entity).remove::<PortraitHead>();
            }
            continue;
        };
        match existing {
            Some(mut existing) if existing.portrait == handle.id() => {
                if let BuildState::Building(task) = &mut existing.state
                    && let Some(result) = check_ready(task)
                {
                    existing.state = match result {
                        Ok(asset) => BuildState::Built(head_assets.add(asset)),
                        Err(error) => BuildState::Failed(error.to_string()),
                    };
                }
            }
            _ => {
                let Some(image) = images.get(handle) else {
                    continue;
                };
                let Some(models) = models.as_ref() else {
                    continue;
                };
                let state = match start_build(models, image) {
                    Ok(task) => BuildState::Building(task),
                    Err(reason) => BuildState::Failed(reason),
                };
                commands.entity(entity).insert(PortraitHead {
                    portrait: handle.id(),
                    state,
                });
            }
        }
    }
}

fn start_build(
    models: &Models,
    image: &Image,
) -> Result<Task<Result<HeadAsset, IdentityError>>, String> {
    let missing = models
        .missing(&PORTRAIT_TO_HEAD)
        .map_err(|reason| format!("building a head from a portrait needs models: {reason}"))?;
    if !missing.is_empty() {
        return Err(format!(
            "building a head from a portrait needs the face-landmark models {}, which are not in \
             assets/models/manifest.ron; use TalkingHead::from_asset with a built head asset",
            missing.join(", ")
        ));
    }
    let registry: Arc<ModelRegistry> = models
        .registry()
        .ok_or_else(|| "no face models are loaded".to_string())?;
    let portrait = image
        .clone()
        .try_into_dynamic()
        .map_err(|e| format!("the portrait's pixel format cannot be read: {e}"))?;
    Ok(AsyncComputeTaskPool::get().spawn(async move { build(&registry, &portrait) }))
}
