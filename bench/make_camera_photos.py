"""Makes camera-sized test photos: 12-megapixel (4000x3000) JPEGs at quality 90 from real photographs.

    make_camera_photos.py OUT_DIR COUNT < list-of-source-images

Takes the COUNT largest colour (RGB) photographs of the list (PIL decodes them; others are passed over), crops each
to 4:3 around its centre, upscales it with bicubic interpolation to 4000x3000 and saves it with PIL at quality 90
(4:2:0 chroma, like a phone camera). Every output comes from a different source photo. Deterministic.
"""
import os
import sys

from PIL import Image

WIDTH, HEIGHT, QUALITY = 4000, 3000, 90


def main():
    out_dir, count = sys.argv[1], int(sys.argv[2])
    sources = []
    for path in (line.strip() for line in sys.stdin):
        if not path:
            continue
        try:
            with Image.open(path) as im:
                im.load()
                if im.mode == "RGB":
                    sources.append((-im.size[0] * im.size[1], path))
        except Exception:  # not decodable: not a source
            continue
    sources.sort()
    if len(sources) < count:
        sys.exit(f"make_camera_photos: only {len(sources)} colour photos, {count} wanted")
    os.makedirs(out_dir, exist_ok=True)
    for i, (_, path) in enumerate(sources[:count]):
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            if w * 3 > h * 4:  # too wide: crop the sides
                cw, ch = h * 4 // 3, h
            else:               # too tall: crop top and bottom
                cw, ch = w, w * 3 // 4
            left, top = (w - cw) // 2, (h - ch) // 2
            im = im.crop((left, top, left + cw, top + ch)).resize((WIDTH, HEIGHT), Image.BICUBIC)
            name = f"{i:03d}-{os.path.splitext(os.path.basename(path))[0]}.jpg"
            im.save(os.path.join(out_dir, name), "JPEG", quality=QUALITY)


if __name__ == "__main__":
    main()
