// Volume renderer for one talking head: tri-plane features warped by blended motion bases.
// The CPU reference renderer (plugin/render/reference.rs) implements the same maths line for line;
// change both together. Conventions are documented in plugin/identity/head_asset.rs.

struct March {
    // xyz: camera position in head space (metres); w: tan(vertical fov / 2)
    origin: vec4<f32>,
    // xyz: camera right axis; w: width / height
    right: vec4<f32>,
    // xyz: camera up axis; w: step length along the ray (metres)
    up: vec4<f32>,
    // xyz: camera forward axis; w: transmittance below which a ray stops
    forward: vec4<f32>,
    // xyz: half size of the head's box (metres); w: negative to take every sample (no empty-space skipping)
    half_extent: vec4<f32>,
    // width, height, steps per ray, tri-plane resolution
    size: vec4<u32>,
    // channels, decoder hidden width, motion basis count, motion-basis resolution
    shape: vec4<u32>,
    // the mouth: middle of the lips' line (x, y, metres), half its width, how strongly synthesized teeth show
    mouth: vec4<f32>,
    // The portrait display (identity::layers): plate width, height (pixels), 1 to colour the head from the face
    // plate and composite it over the body and background plates (0: the head alone; the pipeline compiled with
    // PORTRAIT draws the first, the other the second), unused
    plates: vec4<u32>,
    // plate point of output pixel (0, 0)'s corner (x, y) and plate pixels per output pixel (x, y)
    crop: vec4<f32>,
    // head space -> plate pixels: plate point of the head's origin (x, y), plate pixels per metre; density factor
    frame: vec4<f32>,
    // the neck (plate pixels): jaw row, ring row, middle column, half width
    neck: vec4<f32>,
    // where the head's motion takes a plate point at the neck's top: x = dot(neck_x.xyz, (x, y, 1)), y likewise
    // with neck_y; neck_x.w: how far the neck's top follows; neck_y.w: sine of the head's turn from the photo's pose
    neck_x: vec4<f32>,
    neck_y: vec4<f32>,
    // how much further the hair around the head moves than the neck's top (plate pixels), unused, unused
    hair: vec4<f32>,
    // the eyes' openings (centre x, y, half width, half height, metres; identity::Eye), the eyeballs' radii
    // (left, right), and the gaze: left eye's yaw and pitch, right eye's (radians)
    eye_left: vec4<f32>,
    eye_right: vec4<f32>,
    eyeballs: vec4<f32>,
    gaze: vec4<f32>,
}

// A read-only storage buffer, not a uniform one: lavapipe compiles a new variant of a shader for each new value of
// the uniforms its branches test, and the camera moves every frame.
@group(0) @binding(0) var<storage, read> march: March;
// Canonical features as f16 pairs, [plane][row][column][channel].
@group(0) @binding(1) var<storage, read> triplane: array<u32>;
// Motion bases as f16 pairs (three per texel: dx dy, dz opening, shade and a zero), [basis][plane][row][column].
@group(0) @binding(2) var<storage, read> bases: array<u32>;
// Decoder weights: w1 (hidden x channels), b1, w2 (4 x hidden), b2.
@group(0) @binding(3) var<storage, read> decoder: array<f32>;
@group(0) @binding(4) var<storage, read> motion_code: array<f32>;
// The motion code applied to the bases: one displacement and opening per motion-basis texel, then one shade per
// texel (in x).
@group(0) @binding(5) var<storage, read_write> displacement: array<vec4<f32>>;
// Premultiplied linear RGBA.
@group(0) @binding(6) var output: texture_storage_2d<rgba16float, write>;
// The portrait's face, body and background plates, one after the other, each width x height packed sRGB RGBA8
// (straight alpha), row-major; then the photo weights, one byte per pixel, four to a value. A placeholder when
// the head is drawn alone.
@group(0) @binding(7) var<storage, read> plates: array<u32>;
// Empty-space skipping (render::empty_space): per cell of the head's box, [z][y][x], a lower bound on the distance
// (metres) to where the canonical head may have density.
@group(0) @binding(8) var<storage, read> clearance: array<f32>;
// How far the blended motion bases move points this frame (metres), written by `reach` for `march_rays`: per plane
// the longest displacement (f32 bits; zeroed before each frame), then per plane and cell footprint, [plane][b][a],
// the longest displacement of the texels its lookups can touch.
struct Reach {
    planes: array<atomic<u32>, 4>,
    cells: array<f32>,
}
@group(0) @binding(9) var<storage, read_write> reach: Reach;

// EMPTY_SPACE_CELLS (render::empty_space::CELLS), MAX_CHANNELS, MAX_HIDDEN, SHADE_RANGE (HeadAsset::motion_bases),
// STEEPNESS_UNIT and SMEAR (identity::layers), EYE_FADE and EYEBALL_SHOWN (identity::Eye), DENSITY_SCALE and
// COLOUR_SLOPE (identity::construct, for CONSTRUCTED_DECODER), and
// for where the lips part (see HeadAsset::motion_bases and identity::Mouth)
// OPENING_START, OPENING_FULL, MOUTH_INTERIOR, TEETH, TEETH_SHOW, TEETH_LIT_GAP, TOOTH_COUNT, TOOTH_WIDTHS and
// TOOTH_LENGTHS: defined by the plugin in front of this file from the Rust constants of the same names
// (render::gpu::shader_source), so that the CPU reference and the shader cannot disagree.

@compute @workgroup_size(64)
fn blend(@builtin(global_invocation_id) id: vec3<u32>) {
    let m = march.shape.w;
    let texels = 3u * m * m;
    let t = id.x;
    if t >= texels {
        return;
    }
    var d = vec4<f32>(0.0);
    var shade = 0.0;
    for (var k = 0u; k < march.shape.z; k++) {
        let base = (k * texels + t) * 3u;
        let v = vec4<f32>(unpack2x16float(bases[base]), unpack2x16float(bases[base + 1u]));
        d = d + motion_code[k] * v;
        shade = shade + motion_code[k] * unpack2x16float(bases[base + 2u]).x;
    }
    displacement[t] = d;
    displacement[texels + t] = vec4<f32>(shade, 0.0, 0.0, 0.0);
}

// The motion-plane texels (first, last) the lookups of points in cell i along an axis can touch, one spare on each
// side (render::empty_space::footprint).
fn footprint(i: u32, m: u32) -> vec2<u32> {
    let per_cell = f32(m) / f32(EMPTY_SPACE_CELLS);
    let first = i32(floor(f32(i) * per_cell - 0.5)) - 1;
    let last = i32(floor(f32(i + 1u) * per_cell - 0.5)) + 2;
    return vec2<u32>(u32(clamp(first, 0, i32(m) - 1)), u32(clamp(last, 0, i32(m) - 1)));
}

// After `blend`: per plane and cell footprint, the longest blended displacement (metres) there, and per plane the
// longest of all.
@compute @workgroup_size(64)
fn reach_cells(@builtin(global_invocation_id) id: vec3<u32>) {
    let n = EMPTY_SPACE_CELLS;
    if id.x >= 3u * n * n {
        return;
    }
    let m = march.shape.w;
    let plane = id.x / (n * n);
    let xs = footprint(id.x % n, m);
    let ys = footprint(id.x / n % n, m);
    var longest = 0.0;
    for (var y = ys.x; y <= ys.y; y++) {
        for (var x = xs.x; x <= xs.y; x++) {
            let d = displacement[(plane * m + y) * m + x];
            longest = max(longest, length(d.xyz * march.half_extent.xyz));
        }
    }
    reach.cells[id.x] = longest;
    // Lengths are positive, and positive floats order as their bits do.
    atomicMax(&reach.planes[plane], bitcast<u32>(longest));
}

// Texel indices (within one plane) and weights of a bilinear lookup at (a, b) in [-1, 1]².
struct Bilinear {
    i00: u32,
    i10: u32,
    i01: u32,
    i11: u32,
    w00: f32,
    w10: f32,
    w01: f32,
    w11: f32,
}

fn bilinear(a: f32, b: f32, res: u32) -> Bilinear {
    let r = f32(res);
    let sx = clamp((a + 1.0) * 0.5 * r - 0.5, 0.0, r - 1.0);
    let sy = clamp((b + 1.0) * 0.5 * r - 0.5, 0.0, r - 1.0);
    let x0 = min(u32(floor(sx)), res - 2u);
    let y0 = min(u32(floor(sy)), res - 2u);
    let fx = sx - f32(x0);
    let fy = sy - f32(y0);
    var o: Bilinear;
    o.i00 = y0 * res + x0;
    o.i10 = o.i00 + 1u;
    o.i01 = o.i00 + res;
    o.i11 = o.i01 + 1u;
    o.w00 = (1.0 - fx) * (1.0 - fy);
    o.w10 = fx * (1.0 - fy);
    o.w01 = (1.0 - fx) * fy;
    o.w11 = fx * fy;
    return o;
}

// Plane p is indexed by (x, y), (x, z) or (z, y).
fn plane_coords(u: vec3<f32>, p: u32) -> vec2<f32> {
    if p == 0u {
        return u.xy;
    }
    if p == 1u {
        return u.xz;
    }
    return u.zy;
}

// The blended displacement (xyz) and opening (w) at u.
fn displacement_at(u: vec3<f32>) -> vec4<f32> {
    let m = march.shape.w;
    var d = vec4<f32>(0.0);
    for (var p = 0u; p < 3u; p++) {
        let c = plane_coords(u, p);
        let s = bilinear(c.x, c.y, m);
        let o = p * m * m;
        d = d + s.w00 * displacement[o + s.i00] + s.w10 * displacement[o + s.i10]
            + s.w01 * displacement[o + s.i01] + s.w11 * displacement[o + s.i11];
    }
    return d;
}

// The factor by which the blended shade scales the colour at u (see HeadAsset::motion_bases).
fn shade_at(u: vec3<f32>) -> f32 {
    let m = march.shape.w;
    let texels = 3u * m * m;
    var shade = 0.0;
    for (var p = 0u; p < 3u; p++) {
        let c = plane_coords(u, p);
        let s = bilinear(c.x, c.y, m);
        let o = texels + p * m * m;
        shade = shade + s.w00 * displacement[o + s.i00].x + s.w10 * displacement[o + s.i10].x
            + s.w01 * displacement[o + s.i01].x + s.w11 * displacement[o + s.i11].x;
    }
    return exp(clamp(shade, SHADE_RANGE.x, SHADE_RANGE.y));
}

// Density (per metre) in w and linear colour in xyz at canonical point u.
fn decode(u: vec3<f32>) -> vec4<f32> {
    let r = march.size.w;
    let channels = march.shape.x;
    let pairs = channels / 2u;
    var feat: array<f32, MAX_CHANNELS>;
    for (var c = 0u; c < channels; c++) {
        feat[c] = 0.0;
    }
    for (var p = 0u; p < 3u; p++) {
        let c2 = plane_coords(u, p);
        let s = bilinear(c2.x, c2.y, r);
        let o = p * r * r;
        for (var q = 0u; q < pairs; q++) {
            let v = s.w00 * unpack2x16float(triplane[(o + s.i00) * pairs + q])
                + s.w10 * unpack2x16float(triplane[(o + s.i10) * pairs + q])
                + s.w01 * unpack2x16float(triplane[(o + s.i01) * pairs + q])
                + s.w11 * unpack2x16float(triplane[(o + s.i11) * pairs + q]);
            feat[2u * q] = feat[2u * q] + v.x;
            feat[2u * q + 1u] = feat[2u * q + 1u] + v.y;
        }
    }
#ifdef CONSTRUCTED_DECODER
    // The constructed heads' decoder in closed form (identity::construct::closed_form_decode): the same function
    // as its MLP in a few operations.
    let colour = vec3<f32>(max(feat[3], feat[6]), max(feat[4], feat[7]), max(feat[5], feat[8]))
        - COLOUR_SLOPE * abs(feat[2]);
    return vec4<f32>(1.0 / (1.0 + exp(-colour)), DENSITY_SCALE * max(min(feat[0], feat[1]), 0.0));
#else
    let hidden_width = march.shape.y;
    let b1 = hidden_width * channels;
    let w2 = b1 + hidden_width;
    let b2 = w2 + 4u * hidden_width;
    var hidden: array<f32, MAX_HIDDEN>;
    for (var h = 0u; h < hidden_width; h++) {
        var s = decoder[b1 + h];
        for (var c = 0u; c < channels; c++) {
            s = s + decoder[h * channels + c] * feat[c];
        }
        hidden[h] = max(s, 0.0);
    }
    var raw = vec4<f32>(decoder[b2], decoder[b2 + 1u], decoder[b2 + 2u], decoder[b2 + 3u]);
    for (var h = 0u; h < hidden_width; h++) {
        raw = raw + hidden[h] * vec4<f32>(
            decoder[w2 + h],
            decoder[w2 + hidden_width + h],
            decoder[w2 + 2u * hidden_width + h],
            decoder[w2 + 3u * hidden_width + h],
        );
    }
    let rgb = 1.0 / (1.0 + exp(-raw.yzw));
    return vec4<f32>(rgb, max(raw.x, 0.0));
#endif
}

// What shows inside the mouth where the lips part at head-space point p (metres), from the blended warp there (y:
// the gap the bases open on the point's side of the lips' line, normalised by the half height) and the head's mouth:
// the interior, and the synthesized upper teeth hanging from the lips' line (see identity::Mouth).
fn mouth_colour(p: vec3<f32>, warp: vec4<f32>, half_height: f32) -> vec3<f32> {
    let mouth = march.mouth;
    let across = abs(p.x - mouth.x);
    let below = mouth.y - p.y;
    // The tooth at `across`, the distance to its nearer side and how far it reaches below the line.
    var widths = TOOTH_WIDTHS;
    var lengths = TOOTH_LENGTHS;
    var inner = 0.0;
    var side = -1.0;
    var length = 0.0;
    for (var k = 0u; k < TOOTH_COUNT; k++) {
        if across < inner + widths[k] {
            side = min(across - inner, inner + widths[k] - across);
            length = lengths[k];
            break;
        }
        inner = inner + widths[k];
    }
    if side < 0.0 {
        return MOUTH_INTERIOR;
    }
    // Each tooth's lower corners are rounded off and the seams between teeth are shaded.
    let rounded = 1.0 - 0.35 * (1.0 - smoothstep(0.0, 0.0015, side));
    let reach = TEETH_SHOW * length * rounded;
    let band = 1.0 - smoothstep(reach - 0.0005, reach, below);
    let seam = 1.0 - 0.45 * (1.0 - smoothstep(0.0, 0.0007, side));
    // Towards the corners the row turns away into the mouth's shadow, as it does in thin gaps.
    let recede = 1.0 - 0.75 * smoothstep(0.3 * mouth.z, 0.95 * mouth.z, across);
    let lit = 0.25 + 0.75 * smoothstep(0.0, TEETH_LIT_GAP, abs(warp.y) * half_height);
    // Shadow is the mouth's interior showing through.
    return mix(MOUTH_INTERIOR, TEETH, mouth.w * band * seam * recede * lit);
}

#ifdef PORTRAIT
fn srgb_to_linear(c: vec3<f32>) -> vec3<f32> {
    return select(pow((c + 0.055) / 1.055, vec3<f32>(2.4)), c / 12.92, c <= vec3<f32>(0.04045));
}

// Premultiplied linear RGBA of texel (x, y) of plate k (0 face, 1 body, 2 background), clamped to the plate.
fn plate_texel(k: u32, x: i32, y: i32) -> vec4<f32> {
    let w = i32(march.plates.x);
    let h = i32(march.plates.y);
    let i = k * u32(w * h) + u32(clamp(y, 0, h - 1) * w + clamp(x, 0, w - 1));
    let v = unpack4x8unorm(plates[i]);
    return vec4<f32>(srgb_to_linear(v.rgb) * v.a, v.a);
}

// Plate k at plate point q (pixels; texel centres at +0.5), bilinear, premultiplied.
fn plate_at(k: u32, q: vec2<f32>) -> vec4<f32> {
    let s = q - 0.5;
    let f = floor(s);
    let t = s - f;
    let x = i32(f.x);
    let y = i32(f.y);
    let top = mix(plate_texel(k, x, y), plate_texel(k, x + 1, y), t.x);
    let bottom = mix(plate_texel(k, x, y + 1), plate_texel(k, x + 1, y + 1), t.x);
    return mix(top, bottom, t.y);
}

// The byte of plane k (0 steepness, 1 follow) at the texel nearest plate point q.
fn plate_byte(k: u32, q: vec2<f32>) -> f32 {
    let w = i32(march.plates.x);
    let h = i32(march.plates.y);
    let n = u32(w * h);
    let i = u32(clamp(i32(floor(q.y)), 0, h - 1) * w + clamp(i32(floor(q.x)), 0, w - 1));
    let word = plates[3u * n + k * ((n + 3u) / 4u) + i / 4u];
    return f32((word >> (8u * (i % 4u))) & 255u);
}

// How much of the head's colour at plate point q comes from the face plate: all of it unless the surface there
// is steep and the head turned (see identity::layers::SMEAR).
fn photo_weight(q: vec2<f32>) -> f32 {
    let steepness = plate_byte(0u, q) * STEEPNESS_UNIT;
    return 1.0 - smoothstep(SMEAR.x, SMEAR.y, steepness * march.neck_y.w);
}

// The plate point of head-space point p (metres).
fn plate_point(p: vec3<f32>) -> vec2<f32> {
    return vec2<f32>(march.frame.x + p.x * march.frame.z, march.frame.y - p.y * march.frame.z);
}

// The body plate's point that the head's motion takes to plate point q, read from p: q moved back by the share of
// the motion that the point at p follows (the neck's top and the hair around the head).
fn body_source(q: vec2<f32>, p: vec2<f32>) -> vec2<f32> {
    let neck = march.neck;
    let down = clamp((neck.y - p.y) / max(neck.y - neck.x, 1e-3), 0.0, 1.0);
    let across = clamp((abs(p.x - neck.z) - neck.w) / max(neck.w, 1e-3), 0.0, 1.0);
    let neck_weight = march.neck_x.w * down * down * (3.0 - 2.0 * down)
        * (1.0 - across * across * (3.0 - 2.0 * across));
    let hair = plate_byte(1u, p) / 255.0;
    let weight = max(neck_weight, hair);
    let moved = vec2<f32>(dot(march.neck_x.xyz, vec3<f32>(p, 1.0)), dot(march.neck_y.xyz, vec3<f32>(p, 1.0)));
    return q - weight * (moved - p) - hair * march.hair.xy;
}

// What shows behind the head at plate point q: the body plate (its neck's top and the hair around the head moved
// towards where the head's motion takes them; the share each point follows read where it sat, two fixed-point
// steps, so that hair moving out past the head's outline at rest keeps up) over the background plate.
// Premultiplied.
fn behind_head(q: vec2<f32>) -> vec4<f32> {
    let body = plate_at(1u, body_source(q, body_source(q, q)));
    let background = plate_at(2u, q);
    return body + (1.0 - body.a) * background;
}
#endif

// Where head-space point p (x, y, metres) takes its colour from when `eye` (centre, half size) with an eyeball of
// `radius` is turned by `turn` (yaw towards +x, pitch up): the eyeball's point at rest that the turn brings to p,
// kept inside the opening and moved only as far as the fade towards the lids allows (identity::Eye::source).
fn eye_source(p: vec2<f32>, eye: vec4<f32>, radius: f32, turn: vec2<f32>) -> vec2<f32> {
    let half = eye.zw;
    if half.x <= 0.0 || half.y <= 0.0 || (turn.x == 0.0 && turn.y == 0.0) {
        return p;
    }
    let t = length((p - eye.xy) / half);
    if t >= 1.0 {
        return p;
    }
    let fade = 1.0 - smoothstep(EYE_FADE, 1.0, t);
    let q = p - eye.xy;
    let z = sqrt(max(radius * radius - dot(q, q), 0.0));
    let a = vec3<f32>(q.x * cos(turn.x) - z * sin(turn.x), q.y, q.x * sin(turn.x) + z * cos(turn.x));
    var rest = vec2<f32>(a.x, a.y * cos(turn.y) - a.z * sin(turn.y));
    let inside = rest / half;
    if length(inside) > EYEBALL_SHOWN {
        rest = inside / length(inside) * EYEBALL_SHOWN * half;
    }
    return p + (eye.xy + rest - p) * fade;
}

// Canonical point u (normalised) with the eyes turned: inside an eye's opening, the point of the eyeball at rest
// that shows there.
fn gazed(u: vec3<f32>) -> vec3<f32> {
    let h = march.half_extent.xyz;
    var p = u.xy * h.xy;
    p = eye_source(p, march.eye_left, march.eyeballs.x, march.gaze.xy);
    p = eye_source(p, march.eye_right, march.eyeballs.y, march.gaze.zw);
    return vec3<f32>(p / h.xy, u.z);
}

// The cell holding head-space point p (clamped to the box).
fn cell_of(p: vec3<f32>) -> vec3<u32> {
    let n = f32(EMPTY_SPACE_CELLS);
    return vec3<u32>(clamp(floor((p / march.half_extent.xyz + 1.0) * 0.5 * n), vec3<f32>(0.0), vec3<f32>(n - 1.0)));
}

@compute @workgroup_size(8, 8)
fn march_rays(@builtin(global_invocation_id) id: vec3<u32>) {
    let width = march.size.x;
    let height = march.size.y;
    if id.x >= width || id.y >= height {
        return;
    }
    let tan_half = march.origin.w;
    let x = ((f32(id.x) + 0.5) / f32(width) * 2.0 - 1.0) * tan_half * march.right.w;
    let y = (1.0 - (f32(id.y) + 0.5) / f32(height) * 2.0) * tan_half;
    let dir = normalize(march.forward.xyz + x * march.right.xyz + y * march.up.xyz);
    let origin = march.origin.xyz;
    let half_extent = march.half_extent.xyz;

    let safe = select(dir, vec3<f32>(1e-9), abs(dir) < vec3<f32>(1e-9));
    let t0 = (-half_extent - origin) / safe;
    let t1 = (half_extent - origin) / safe;
    let t_near = max(max(max(min(t0.x, t1.x), min(t0.y, t1.y)), min(t0.z, t1.z)), 0.0);
    let t_far = min(min(max(t0.x, t1.x), max(t0.y, t1.y)), max(t0.z, t1.z));

    let step_len = march.up.w;
    let stop = march.forward.w;
    let density_factor = march.frame.w;
    var color = vec3<f32>(0.0);
    var transmittance = 1.0;
    // How much of the pixel the head covers: 1 - transmittance, or with the portrait display the same weighted
    // by the face plate's matte where the ray meets the head.
    var coverage = 0.0;
    let skipping = march.half_extent.w >= 0.0;
    // A bilinear lookup is never longer than its longest texel, so a point moves at most the planes' sum.
    let warp_bound = bitcast<f32>(atomicLoad(&reach.planes[0])) + bitcast<f32>(atomicLoad(&reach.planes[1]))
        + bitcast<f32>(atomicLoad(&reach.planes[2]));
    let n = EMPTY_SPACE_CELLS;
    if t_near < t_far {
        // Samples to advance by: one, or past the empty space around this one.
        var advance = 1u;
        for (var i = 0u; i < march.size.z; i += advance) {
            advance = 1u;
            let t = t_near + (f32(i) + 0.5) * step_len;
            if t > t_far {
                break;
            }
            if skipping {
                let cell = cell_of(origin + t * dir);
                let clear = clearance[(cell.z * n + cell.y) * n + cell.x];
                // Nothing within `free` of this sample can show: skip every sample nearer than that.
                let free = clear - warp_bound;
                if free > 0.0 {
                    advance = max(1u, u32(min(ceil(free / step_len), f32(march.size.z))));
                    continue;
                }
                // This sample shows nothing if the motion around it cannot reach the head.
                let local = reach.cells[cell.y * n + cell.x] + reach.cells[(n + cell.z) * n + cell.x]
                    + reach.cells[(2u * n + cell.y) * n + cell.z];
                if clear > local {
                    continue;
                }
            }
            let u = (origin + t * dir) / half_extent;
            let warp = displacement_at(u);
            let canonical = gazed(u + warp.xyz);
            if any(abs(canonical) > vec3<f32>(1.0)) {
                continue;
            }
            let point = decode(canonical);
            let alpha = 1.0 - exp(-point.w * density_factor * step_len);
            if alpha <= 0.0 {
                continue;
            }
            var rgb = point.xyz;
            var matte = 1.0;
#ifdef PORTRAIT
            {
                // The photo's own colour and the head's matte where this point sat at rest; where the surface is
                // steep and the head turned, the head's own colour and opacity instead.
                let q = plate_point(canonical * half_extent);
                let face = plate_at(0u, q);
                let weight = photo_weight(q);
                let photo = select(point.xyz, face.rgb / face.a, face.a > 1e-3);
                matte = mix(1.0, face.a, weight);
                rgb = mix(point.xyz, photo, weight);
            }
#endif
            rgb = rgb * shade_at(u);
            let interior = smoothstep(OPENING_START, OPENING_FULL, warp.w);
            if interior > 0.0 {
                rgb = mix(rgb, mouth_colour(u * half_extent, warp, half_extent.y), interior);
            }
            color = color + transmittance * alpha * matte * rgb;
            coverage = coverage + transmittance * alpha * matte;
            transmittance = transmittance * (1.0 - alpha);
            if transmittance < stop {
                break;
            }
        }
    }
#ifdef PORTRAIT
    let q = march.crop.xy + (vec2<f32>(id.xy) + 0.5) * march.crop.zw;
    let behind = behind_head(q);
    textureStore(output, vec2<i32>(id.xy), vec4<f32>(color, coverage) + (1.0 - coverage) * behind);
#else
    textureStore(output, vec2<i32>(id.xy), vec4<f32>(color, 1.0 - transmittance));
#endif
}
