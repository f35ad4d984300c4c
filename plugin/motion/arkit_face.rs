//! ARKit output: any mesh with morph targets named after ARKit's blendshapes (a glTF avatar exported from an ARKit
//! workflow, a Ready Player Me head, …) follows a head's [`FaceCoefficients`].
//!
//! Put [`ArkitFace`] on the entity that holds the mesh's [`MorphWeights`] (for a glTF scene: the node entity with
//! the mesh, the one Bevy gives `MorphWeights`). Morph targets are matched to ARKit names exactly, ignoring case
//! and any prefix up to a `.` (`blendShape1.jawOpen`) or `_` (`ARKit_jawOpen`). ARKit names the mesh lacks, and a
//! mesh without morph targets, are reported once per entity, not every frame.

use bevy::mesh::morph::MorphWeights;
use bevy::prelude::*;

use super::{ARKIT_NAMES, FaceCoefficients};

/// Drives this entity's morph targets from the [`FaceCoefficients`] of `source` (or of this entity when `None`).
///
/// ```
/// use bevy::prelude::*;
/// use bevy_talking_head::prelude::*;
///
/// // An avatar's mesh entity (holding `MorphWeights`) follows a talking head's coefficients.
/// fn follow(
///     mut commands: Commands,
///     heads: Query<Entity, Added<TalkingHead>>,
///     avatar: Single<Entity, With<MorphWeights>>,
/// ) {
///     if let Some(head) = heads.iter().next() {
///         commands.entity(*avatar).insert(ArkitFace::following(head));
///     }
/// }
/// # bevy::ecs::system::assert_is_system(follow);
/// ```
#[derive(Component, Clone, Debug, Default)]
pub struct ArkitFace {
    /// The entity whose coefficients to follow (a talking head); `None` = this entity.
    pub source: Option<Entity>,
    /// For each morph target, the ARKit weight it follows; rebuilt when the mesh changes.
    mapping: Option<(AssetId<Mesh>, Vec<Option<usize>>)>,
    missing: Vec<&'static str>,
    problem: Option<String>,
}

impl ArkitFace {
    /// Follows the coefficients of `source`.
    pub fn following(source: Entity) -> Self {
        Self {
            source: Some(source),
            ..default()
        }
    }

    /// ARKit names the mesh has no morph target for (empty until the mesh has been seen).
    pub fn missing(&self) -> &[&'static str] {
        &self.missing
    }

    /// Why nothing is driven, if nothing is (no morph weights, no morph target names, no coefficients).
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    fn report(&mut self, entity: Entity, problem: String) {
        if self.problem.as_deref() != Some(problem.as_str()) {
            warn!("ArkitFace on {entity}: {problem}");
            self.problem = Some(problem);
        }
    }
}

/// The ARKit weight a morph target called `name` stands for.
fn arkit_index(name: &str) -> Option<usize> {
    let short = name.rsplit(['.', '_']).next().unwrap_or(name);
    ARKIT_NAMES
        .iter()
        .position(|arkit| arkit.eq_ignore_ascii_case(name) || arkit.eq_ignore_ascii_case(short))
}

/// Copies coefficients into the morph weights of every [`ArkitFace`].
pub(crate) fn drive_arkit_faces(
    meshes: Res<Assets<Mesh>>,
    coefficients: Query<&FaceCoefficients>,
    mut faces: Query<(Entity, &mut ArkitFace, Option<&mut MorphWeights>)>,
) {
    for (entity, mut face, weights) in &mut faces {
        let Some(mut weights) = weights else {
            face.report(
                entity,
                "no MorphWeights here: put ArkitFace on the entity of a mesh with morph targets"
                    .into(),
            );
            continue;
        };
        let Some(mesh_id) = weights.first_mesh().map(Handle::id) else {
            face.report(entity, "its MorphWeights name no mesh".into());
            continue;
        };
        if face.mapping.as_ref().map(|(id, _)| *id) != Some(mesh_id) {
            let Some(mesh) = meshes.get(mesh_id) else {
                continue;
            };
            let names = match mesh.try_morph_target_names() {
                Ok(Some(names)) if !names.is_empty() => names,
                _ => {
                    face.report(entity, "the mesh has no named morph targets".into());
                    continue;
                }
            };
            let mapping: Vec<Option<usize>> = names.iter().map(|n| arkit_index(n)).collect();
            let missing: Vec<&'static str> = ARKIT_NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| !mapping.contains(&Some(*i)))
                .map(|(_, name)| *name)
                .collect();
            if !missing.is_empty() {
                warn!(
                    "ArkitFace on {entity}: the mesh has no morph target for {} ARKit weights: {}",
                    missing.len(),
                    missing.join(", ")
                );
            }
            face.missing = missing;
            face.mapping = Some((mesh_id, mapping));
            face.problem = None;
        }
        let source = face.source.unwrap_or(entity);
        let Ok(frame) = coefficients.get(source) else {
            face.report(entity, format!("entity {source} has no FaceCoefficients"));
            continue;
        };
        let Some((_, mapping)) = &face.mapping else {
            continue;
        };
        for (weight, arkit) in weights.weights_mut().iter_mut().zip(mapping) {
            if let Some(i) = arkit {
                let value = frame.weights[*i];
                *weight = if value.is_finite() {
                    value.clamp(0.0, 1.0)
                } else {
                    0.0
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn morph_target_names_match_arkit_names_with_or_without_prefixes() {
        assert_eq!(arkit_index("jawOpen"), Some(17));
        assert_eq!(arkit_index("JAWOPEN"), Some(17));
        assert_eq!(arkit_index("blendShape1.jawOpen"), Some(17));
        assert_eq!(arkit_index("ARKit_eyeBlinkLeft"), Some(0));
        assert_eq!(arkit_index("smile"), None);
    }
}
