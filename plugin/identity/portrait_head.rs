//! Heads made from portraits inside the app: the face models and the construction run on the async compute task
//! pool; the finished head asset is added to `Assets<HeadAsset>`.

use std::sync::Arc;

use bevy::prelude::*;
use bevy::tasks::{AsyncComputeTaskPool, Task, futures::check_ready};

use super::{
    ConstructSettings, ExpressionBase, FaceLandmarks, HeadAsset, IdentityError, PortraitFrame,
    PortraitLayers, build_head, build_layers, cache, find_face_landmarks, person_mask,
};
use crate::contract::models::PORTRAIT_TO_HEAD;
use crate::head::{HeadSource, TalkingHead};
use crate::inference::ModelRegistry;
use crate::inference::Models;

/// Where the head of a portrait-based [`TalkingHead`] stands. Added and maintained by the plugin.
#[derive(Component, Debug)]
pub struct PortraitHead {
    portrait: AssetId<Image>,
    /// Whether the build makes the photo's layers too.
    with_layers: bool,
    state: BuildState,
}

/// A finished build: the head, and the photo's layers when they were asked for.
type Built = Result<(HeadAsset, Option<PortraitLayers>), IdentityError>;

#[derive(Debug)]
enum BuildState {
    Building(Task<Built>),
    Built(Handle<HeadAsset>, Option<Handle<PortraitLayers>>),
    Failed(String),
}

impl PortraitHead {
    /// The head asset, once built.
    pub fn asset(&self) -> Option<&Handle<HeadAsset>> {
        match &self.state {
            BuildState::Built(handle, _) => Some(handle),
            _ => None,
        }
    }

    /// The photo's layers (what a [`HeadDisplay::Portrait`](crate::HeadDisplay::Portrait) composites the head
    /// over), once built; they are built for heads shown as portraits or busts only. Change the asset to replace the
    /// background ([`PortraitLayers::replace_background`]).
    pub fn layers(&self) -> Option<&Handle<PortraitLayers>> {
        match &self.state {
            BuildState::Built(_, layers) => layers.as_ref(),
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

/// A head built from a portrait, with the landmarks it was built from, the portrait's mapping to head space and
/// the photo's layers.
#[derive(Clone, Debug)]
pub struct BuiltHead {
    /// The head.
    pub asset: HeadAsset,
    /// Portrait pixels ↔ head space.
    pub frame: PortraitFrame,
    /// The face's landmarks in the portrait.
    pub landmarks: FaceLandmarks,
    /// The photo's layers, for the portrait display.
    pub layers: PortraitLayers,
}

/// The whole portrait → head step, no cache: face landmarks (a face turned too far is refused, see
/// [`FaceLandmarks::check_pose`]), person mask, construction with the default settings, the photo's layers.
pub fn head_from_portrait(
    registry: &ModelRegistry,
    portrait: &image::DynamicImage,
) -> Result<BuiltHead, IdentityError> {
    let (asset, frame, landmarks, mask) = construct(registry, portrait)?;
    let layers = build_layers(portrait, &landmarks, &mask, &asset, &frame)?;
    Ok(BuiltHead {
        asset,
        frame,
        landmarks,
        layers,
    })
}

/// The head of [`head_from_portrait`], with what its layers are made from.
fn construct(
    registry: &ModelRegistry,
    portrait: &image::DynamicImage,
) -> Result<(HeadAsset, PortraitFrame, FaceLandmarks, Vec<f32>), IdentityError> {
    let landmarks = find_face_landmarks(registry, portrait)?;
    landmarks.check_pose()?;
    let mask = person_mask(registry, portrait)?;
    let (asset, frame) = build_head(
        portrait,
        &landmarks,
        Some(&mask),
        ConstructSettings::default(),
    );
    Ok((asset, frame, landmarks, mask))
}

/// Loads the portrait's head (and, `with_layers`, its layers) from the disk cache, or builds them (and caches
/// them).
fn build(registry: &ModelRegistry, portrait: &image::DynamicImage, with_layers: bool) -> Built {
    let rgba = portrait.to_rgba8();
    let key = cache::portrait_key(rgba.width(), rgba.height(), rgba.as_raw());
    let dir = cache::default_cache_dir();
    if let Some(dir) = &dir {
        let cached = cache::load(dir, &key).and_then(|asset| {
            let layers = if with_layers {
                cache::load_layers(dir, &key)?
            } else {
                None
            };
            Ok(asset
                .filter(|_| layers.is_some() || !with_layers)
                .map(|a| (a, layers)))
        });
        match cached {
            Ok(Some(built)) => return Ok(built),
            Ok(None) => {}
            Err(error) => warn!("talking_head: rebuilding a cached head: {error}"),
        }
    }
    let (asset, frame, landmarks, mask) = construct(registry, portrait)?;
    let layers = with_layers
        .then(|| build_layers(portrait, &landmarks, &mask, &asset, &frame))
        .transpose()?;
    if let Some(dir) = &dir
        && let Err(error) = cache::save(dir, &key, &asset).and_then(|()| {
            layers
                .as_ref()
                .map_or(Ok(()), |layers| cache::save_layers(dir, &key, layers))
        })
    {
        warn!(
            "talking_head: could not cache the head in {}: {error}",
            dir.display()
        );
    }
    Ok((asset, layers))
}

/// Starts a build for every portrait head whose portrait has loaded (again when the portrait changes), and
/// collects finished builds.
pub(crate) fn build_portrait_heads(
    mut commands: Commands,
    images: Res<Assets<Image>>,
    models: Option<Res<Models>>,
    mut head_assets: ResMut<Assets<HeadAsset>>,
    mut layer_assets: ResMut<Assets<PortraitLayers>>,
    mut heads: Query<(Entity, &TalkingHead, Option<&mut PortraitHead>)>,
) {
    for (entity, head, existing) in &mut heads {
        let HeadSource::Portrait(handle) = &head.source else {
            if existing.is_some() {
                commands.entity(entity).remove::<PortraitHead>();
            }
            continue;
        };
        // The photo's layers are made for heads shown as portraits or busts (asked for later, the head is built
        // again).
        let with_layers = head.settings.display.uses_layers();
        match existing {
            Some(mut existing)
                if existing.portrait == handle.id() && (existing.with_layers || !with_layers) =>
            {
                if let BuildState::Building(task) = &mut existing.state
                    && let Some(result) = check_ready(task)
                {
                    if let (Ok((asset, _)), ExpressionBase::Neutral) =
                        (&result, head.settings.expression_base)
                    {
                        for limit in &asset.expression.limits {
                            warn!("talking_head: neutral base: {limit}");
                        }
                    }
                    existing.state = match result {
                        Ok((asset, layers)) => BuildState::Built(
                            head_assets.add(asset),
                            layers.map(|layers| layer_assets.add(layers)),
                        ),
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
                let state = match start_build(models, image, with_layers) {
                    Ok(task) => BuildState::Building(task),
                    Err(reason) => BuildState::Failed(reason),
                };
                commands.entity(entity).insert(PortraitHead {
                    portrait: handle.id(),
                    with_layers,
                    state,
                });
            }
        }
    }
}

fn start_build(models: &Models, image: &Image, with_layers: bool) -> Result<Task<Built>, String> {
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
    Ok(AsyncComputeTaskPool::get().spawn(async move { build(&registry, &portrait, with_layers) }))
}
