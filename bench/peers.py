"""Benchmark peers of hdnet: the same HDNet hourglass networks in PyTorch and in TensorFlow
(tf.compat.v1 graph mode, as the original). Written from the layer table of the original
(fixtures/tf_reference/README.md, section 5.2); random weights.

Prints one JSON object per line in the schema of `hdnet bench infer|train --json`.
Python appears only here, as a peer to measure against; hdnet itself never runs Python.
"""

import argparse
import json
import time


def widths(w0):
    return [w0, 2 * w0, 4 * w0, 8 * w0, 16 * w0]


def conv_channels(cin, w0):
    w = widths(w0)
    return [(cin, w[0]), (w[0], w[0]), (w[0], w[0]), (w[0], w[1]), (w[1], w[2]), (w[2], w[3]), (w[3], w[4]),
            (w[4], w[4]), (w[4], w[3]), (2 * w[3], w[3]), (w[3], w[2]), (2 * w[2], w[2]), (w[2], w[1]),
            (2 * w[1], w[1]), (w[1], w[0]), (2 * w[0], w[0]), (w[0], w[0])]


def flops(cin, cout, w0, size):
    levels = [0, 0, 0, 1, 2, 3, 4, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0]
    total = sum(2 * 9 * a * b * (size >> l) ** 2 for (a, b), l in zip(conv_channels(cin, w0), levels))
    return total + 2 * w0 * cout * size * size


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def emit(tool, what, args, seconds, gflop):
    per_image = seconds / args.batch
    print(json.dumps({"tool": tool, "what": what, "device": args.device, "width": args.width, "batch": args.batch,
                      "size": args.size, "seconds_per_run": seconds, "ms_per_image": per_image * 1e3,
                      "images_per_s": 1 / per_image, "gflop_per_image": gflop, "gflops": gflop / per_image}),
          flush=True)


# ----------------------------------------------------------------------------------- PyTorch
def torch_peer(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "cuda" else "cpu")

    class Hourglass(nn.Module):
        def __init__(self, cin, cout, w0):
            super().__init__()
            chans = conv_channels(cin, w0)
            self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in chans)
            self.betas = nn.ParameterList(nn.Parameter(torch.zeros(b)) for _, b in chans)
            self.head = nn.Conv2d(w0, cout, 1)

        def block(self, k, x):
            # Batch norm with each image's own statistics (biased variance, eps 1e-3), shift only.
            y = F.instance_norm(self.convs[k](x), eps=1e-3)
            return F.relu(y + self.betas[k].view(1, -1, 1, 1))

        def forward(self, x):
            b = self.block
            up = lambda low, skip: torch.cat([F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False), skip], 1)
            c3 = b(2, b(1, b(0, x)))
            c4 = b(3, F.max_pool2d(c3, 2))
            c5 = b(4, F.max_pool2d(c4, 2))
            c6 = b(5, F.max_pool2d(c5, 2))
            c7 = b(6, F.max_pool2d(c6, 2))
            c9 = b(8, b(7, c7))
            c11 = b(10, b(9, up(c9, c6)))
            c13 = b(12, b(11, up(c11, c5)))
            c15 = b(14, b(13, up(c13, c4)))
            c17 = b(16, b(15, up(c15, c3)))
            return self.head(c17)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        fn()
        sync()
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return median(times)

    s = args.size
    if args.what == "infer":
        for name, cin, cout in [("normal_net", 3, 3), ("depth_net", 9, 1)]:
            net = Hourglass(cin, cout, args.width).to(device).eval()
            x = torch.rand(args.batch, cin, s, s, device=device) * 255

            def forward():
                with torch.no_grad():
                    net(x)

            emit("pytorch", name, args, timed(forward), flops(cin, cout, args.width, s) / 1e9)
        return

    # One depth-stage training step: 2 L2 + scale-invariant + angle of normals from depth.
    net = Hourglass(9, 1, args.width).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    x = torch.rand(args.batch, 9, s, s, device=device) * 255
    yy, xx = torch.meshgrid(torch.arange(s, device=device), torch.arange(s, device=device), indexing="ij")
    r2 = ((yy - s / 2) ** 2 + (xx - s / 2) ** 2) / (0.4 * s) ** 2
    mask = (r2 < 1).float().expand(args.batch, 1, s, s)
    gt = (4 - 0.3 * torch.sqrt((1 - r2).clamp(min=0))).expand(args.batch, 1, s, s) * mask
    n_gt = torch.zeros(args.batch, 3, s, s, device=device)
    n_gt[:, 2] = -mask[:, 0]
    scale, ox, oy, f, cx, cy = 3.5390625, 838.0, 48.0, 1111.6, 960.0, 540.0
    rays = torch.stack([(xx * scale + ox - cx) / f, (yy * scale + oy - cy) / f, torch.ones_like(r2)]).unsqueeze(0)

    def normalise(n):
        n = torch.where(n.abs() < 1e-5, torch.full_like(n, 1e-5), n)
        return n / n.norm(dim=1, keepdim=True)

    def step():
        opt.zero_grad()
        pred = net(x)
        n = mask.sum(dim=(1, 2, 3))
        l2 = (((pred - gt) * mask) ** 2).sum(dim=(1, 2, 3)) / n
        om = (pred * mask).flatten(1)
        lo, hi = om.min(1, keepdim=True).values, om.max(1, keepdim=True).values
        u = (om - lo) / (hi - lo) * gt.flatten(1).max(1, keepdim=True).values * mask.flatten(1)
        d = u - gt.flatten(1)
        si = (d ** 2).sum(1) / n - 0.5 * d.sum(1) ** 2 / n ** 2
        p = pred * rays * mask
        dx = torch.roll(p, -1, 3) - p
        dy = torch.roll(p, 1, 2) - p
        nm = normalise(normalise(torch.cross(dx, dy, dim=1)))
        cos = (nm * n_gt).sum(1) / ((nm * nm).sum(1) + 1e-5)
        ang = (torch.acos(cos.clamp(-1, 1)) * mask[:, 0]).sum() / mask.sum()
        loss = 2 * l2.mean() + si.mean() + ang
        loss.backward()
        opt.step()

    emit("pytorch", "train_step", args, timed(step), 3 * flops(9, 1, args.width, s) / 1e9)


# -------------------------------------------------------------------------------- TensorFlow
def tf_peer(args):
    import os
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow.compat.v1 as tf
    tf.disable_v2_behavior()

    if args.what != "infer":
        raise SystemExit("the TensorFlow peer measures inference only")
    s = args.size
    for name, cin, cout in [("normal_net", 3, 3), ("depth_net", 9, 1)]:
        graph = tf.Graph()
        with graph.as_default():
            x = tf.placeholder(tf.float32, (None, s, s, cin))
            init = tf.initializers.variance_scaling(2.6)

            def block(k, h, a, b):
                w = tf.get_variable(f"w{k}", (3, 3, a, b), initializer=init)
                beta = tf.get_variable(f"beta{k}", (b,), initializer=tf.zeros_initializer())
                y = tf.nn.conv2d(h, w, [1, 1, 1, 1], "SAME")
                mean, var = tf.nn.moments(y, axes=[1, 2], keep_dims=True)  # each image's statistics
                return tf.nn.relu((y - mean) * tf.rsqrt(var + 1e-3) + beta)

            chans = conv_channels(cin, args.width)
            pool = lambda h: tf.nn.max_pool2d(h, 2, 2, "SAME")
            up = lambda low, skip: tf.concat([tf.image.resize_bilinear(low, tf.shape(low)[1:3] * 2), skip], 3)
            c = [None] * 17
            c[0] = block(0, x, *chans[0]); c[1] = block(1, c[0], *chans[1]); c[2] = block(2, c[1], *chans[2])
            c[3] = block(3, pool(c[2]), *chans[3]); c[4] = block(4, pool(c[3]), *chans[4])
            c[5] = block(5, pool(c[4]), *chans[5]); c[6] = block(6, pool(c[5]), *chans[6])
            c[7] = block(7, c[6], *chans[7]); c[8] = block(8, c[7], *chans[8])
            c[9] = block(9, up(c[8], c[5]), *chans[9]); c[10] = block(10, c[9], *chans[10])
            c[11] = block(11, up(c[10], c[4]), *chans[11]); c[12] = block(12, c[11], *chans[12])
            c[13] = block(13, up(c[12], c[3]), *chans[13]); c[14] = block(14, c[13], *chans[14])
            c[15] = block(15, up(c[14], c[2]), *chans[15]); c[16] = block(16, c[15], *chans[16])
            head = tf.get_variable("head", (1, 1, args.width, cout), initializer=init)
            out = tf.nn.conv2d(c[16], head, [1, 1, 1, 1], "SAME")
            config = tf.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=1)
            with tf.Session(config=config) as sess:
                sess.run(tf.global_variables_initializer())
                feed = {x: np.random.rand(args.batch, s, s, cin).astype(np.float32) * 255}
                sess.run(out, feed)
                times = []
                for _ in range(args.runs):
                    start = time.perf_counter()
                    sess.run(out, feed)
                    times.append(time.perf_counter() - start)
        emit("tensorflow", name, args, median(times), flops(cin, cout, args.width, s) / 1e9)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("framework", choices=["torch", "tf"])
    p.add_argument("what", choices=["infer", "train"])
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    (torch_peer if args.framework == "torch" else tf_peer)(args)


if __name__ == "__main__":
    main()
