// Where the time of one pre-training step goes (docs/PERFORMANCE.md, "Where the `seed` step's time goes"); its --only ablations
// compare each fused kernel with a twin of the model that has it turned off (docs/PERFORMANCE.md, "Kernels").
//
// Same synthetic batch as `bert bench train` (full-length sequences, N MLM predictions per sequence), timed by
// phase with a stopwatch (CPU ops run synchronously, so a phase's wall time is its cost):
//   encoder forward (embeddings + layers + pooler), heads + loss forward, encoder backward, heads backward,
//   gradient norm, AdamW step (clipping folded in), clearing the gradients;
// then the step's large pieces alone, at the same shapes, so each can be compared with the matmul peak.
//
// dotnet run -c Release --project bench/StepProfile -- [--preset seed] [--batch-size 512] [--max-seq-length 64]
//     [--predictions 10] [--vocab-size 20256] [--precision fp32|bf16] [--threads 1] [--steps 5] [--chunk-rows 128]
//     [--only softmax-ablation|layernorm-ablation|kernel-threads-ablation|data-parallel-ablation|attention-ablation|residual-ablation|optimizer-ablation]
using System.Diagnostics;
using System.Globalization;
using BertSharp;
using BertSharp.Runtime;
using BertSharp.Modeling;
using BertSharp.Pretraining;
using BertSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

ProcessTuning.Apply();   // as the `bert` command does, before anything touches libtorch
var a = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) a[args[i]] = args[i + 1];
string Opt(string k, string d) => a.TryGetValue(k, out var v) ? v : d;
int threads = int.Parse(Opt("--threads", "1"));
torch.set_num_threads(threads);
var precision = Opt("--precision", "fp32") == "bf16" ? ScalarType.BFloat16 : ScalarType.Float32;
var kernelOptions = new FusedKernelOptions { MlmLossChunkRows = a.TryGetValue("--chunk-rows", out var rows) ? int.Parse(rows) : null };
int B = int.Parse(Opt("--batch-size", "512")), T = int.Parse(Opt("--max-seq-length", "64"));
int P = int.Parse(Opt("--predictions", "10")), steps = int.Parse(Opt("--steps", "5"));
var config = BertConfig.FromPreset(Opt("--preset", "seed"), int.Parse(Opt("--vocab-size", "20256")));
int H = config.HiddenSize, V = config.VocabSize;

using var model = new BertForPreTraining(config, new ComputeOptions { Dtype = precision, Kernels = BertKernels.FusedWith(kernelOptions) });
model.InitWeights();
model.train();
var parameters = model.parameters().ToList();
using var opt = torch.optim.AdamW(parameters, lr: 1e-4);
// Each ablation's "without" runs on a twin of the model, the same weights with some kernels turned off, and its own optimizer.
var twins = new Dictionary<BertForPreTraining, (List<Parameter> Parameters, AdamW Opt)>();
BertForPreTraining Twin(Func<FusedKernelOptions, FusedKernelOptions> change)
{
    var twin = new BertForPreTraining(config, new ComputeOptions { Dtype = precision, Kernels = BertKernels.FusedWith(change(kernelOptions)) });
    twin.load_state_dict(model.state_dict());
    twin.train();
    var ps = twin.parameters().ToList();
    twins[twin] = (ps, torch.optim.AdamW(ps, lr: 1e-4));
    return twin;
}
using var ids = randint(5, V, new long[] { B, T });
using var types = zeros(B, T, dtype: ScalarType.Int64);
using var mask = ones(B, T, dtype: ScalarType.Int64);
var pos = new long[B * P];
for (int b = 0; b < B; b++) for (int p = 0; p < P; p++) pos[b * P + p] = (long)b * T + 1 + p * (T - 2) / P;
using var positions = tensor(pos);
using var labels = randint(5, V, new long[] { pos.Length });
using var nsp = randint(0, 2, new long[] { B });

var sums = new Dictionary<string, double>();
var order = new List<string>();
var sw = new Stopwatch();
void Lap(string name)
{
    double ms = sw.Elapsed.TotalMilliseconds;
    if (!sums.ContainsKey(name)) { sums[name] = 0; order.Add(name); }
    sums[name] += ms;
    sw.Restart();
}

// The trainer's optimizer path (gradients dropped before the step, FusedAdamW with the clipping folded in), or the
// libtorch one it replaced (zero_grad, clip_grad_norm_, TorchSharp's AdamW step): the optimizer-ablation's before.
bool fusedOptimizer = true;
void ZeroGrad(BertForPreTraining? m = null)
{
    var (ps, o) = m is null || m == model ? (parameters, opt) : twins[m];
    if (fusedOptimizer) FusedAdamW.ClearGradients(ps); else o.zero_grad();
}
void Update(BertForPreTraining? m = null)
{
    var (ps, o) = m is null || m == model ? (parameters, opt) : twins[m];
    if (fusedOptimizer) FusedAdamW.Step(o, FusedAdamW.ClipScale(FusedAdamW.GradientNorm(ps), 1.0));
    else { torch.nn.utils.clip_grad_norm_(ps, 1.0); o.step(); }
}

// The full step as the trainer runs it (fused MLM loss), or with the textbook loss over materialised logits.
double FullStep(bool fused = true)
{
    using var scope = NewDisposeScope();
    var t = Stopwatch.StartNew();
    ZeroGrad();
    Tensor loss;
    if (fused) loss = ShardedPretrainingLoss.Compute(model, ids, types, mask, positions, labels, nsp).Total;
    else
    {
        using var o = model.Forward(ids, types, mask, positions);
        loss = BertForPreTraining.Loss(o.MlmLogits, labels, o.NspLogits!, nsp).Total;
    }
    loss.backward();
    Update();
    return t.Elapsed.TotalMilliseconds;
}

// The same step cut at the encoder output: the heads run on a leaf copy of it, so their backward and the
// encoder's are timed apart (the leaf's gradient is then fed to the encoder's backward).
void PhasedStep()
{
    using var scope = NewDisposeScope();
    sw.Restart();
    ZeroGrad();
    Lap("clear the gradients");
    var enc = model.Bert.Forward(ids, types, mask);
    Lap("encoder forward (embeddings, layers, pooler)");
    var last = enc.LastHiddenState.detach().requires_grad_();
    var pooled = enc.PoolerOutput!.detach().requires_grad_();
    var flat = last.reshape(-1, H).index_select(0, positions);
    var mlmLoss = model.MlmLossFor(flat, labels);
    Lap("MLM head + fused loss forward (computes its gradients)");
    var nspLoss = nn.functional.cross_entropy(model.NspLogitsFor(pooled), nsp);
    var loss = mlmLoss + nspLoss;
    Lap("NSP head + loss forward");
    loss.backward();
    Lap("heads + losses backward");
    torch.autograd.backward(new[] { enc.LastHiddenState, enc.PoolerOutput! }, new[] { last.grad!, pooled.grad! });
    Lap("encoder backward");
    double norm = FusedAdamW.GradientNorm(parameters);
    Lap("gradient norm (for the clipping)");
    FusedAdamW.Step(opt, FusedAdamW.ClipScale(norm, 1.0));
    Lap("AdamW step (fused, clipping folded in)");
    enc.Dispose();
}

Console.WriteLine($"{Opt("--preset", "seed")} L{config.NumHiddenLayers}/H{H}/A{config.NumAttentionHeads} vocab {V}, batch {B}x{T}, {P} predictions/seq, {(precision == ScalarType.BFloat16 ? "bf16" : "fp32")}, {threads} thread(s)");
if (Opt("--only", "") == "softmax-ablation") { SoftmaxAblation(); return 0; }
if (Opt("--only", "") == "layernorm-ablation") { LayerNormAblation(); return 0; }
if (Opt("--only", "") == "kernel-threads-ablation") { KernelThreadsAblation(); return 0; }
if (Opt("--only", "") == "data-parallel-ablation") { DataParallelAblation(); return 0; }
if (Opt("--only", "") == "optimizer-ablation") { OptimizerAblation(); return 0; }
if (Opt("--only", "") == "attention-ablation") { AttentionAblation(); return 0; }
if (Opt("--only", "") == "residual-ablation") { ResidualAblation(); return 0; }
for (int i = 0; i < 2; i++) { FullStep(); FullStep(fused: false); PhasedStep(); }
sums.Clear(); order.Clear();
double full = 0, plain = 0;
for (int i = 0; i < steps; i++) { full += FullStep(); plain += FullStep(fused: false); PhasedStep(); }
full /= steps; plain /= steps;
double phased = sums.Values.Sum() / steps;
Console.WriteLine($"full step {full,9:F1} ms (with the textbook MLM loss over materialised logits: {plain:F1} ms); phases below add up to {phased:F1} ms");
foreach (var k in order) Console.WriteLine($"  {k,-52} {sums[k] / steps,9:F1} ms  {100 * sums[k] / steps / phased,5:F1} %");

// The pieces alone.
double Time(Action f, int n = 5)
{
    for (int i = 0; i < 2; i++) { using var s = NewDisposeScope(); f(); }   // warm-up, freed at once (a custom autograd function's saved tensors otherwise wait for the GC)
    var t = Stopwatch.StartNew();
    for (int i = 0; i < n; i++) { using var s = NewDisposeScope(); f(); }
    return t.Elapsed.TotalMilliseconds / n;
}
var dt = precision;
using var peakA = randn(2048, 2048, dtype: dt);
using var peakB = randn(2048, 2048, dtype: dt);
double peakMs = Time(() => peakA.matmul(peakB));
double peak = 2.0 * 2048 * 2048 * 2048 / (peakMs / 1000) / 1e9;
Console.WriteLine($"matmul 2048^3 peak: {peak:F1} GFLOP/s");
void Report(string name, double ms, double flops) =>
    Console.WriteLine($"  {name,-60} {ms,8:F1} ms" + (flops > 0 ? $"  {flops / (ms / 1000) / 1e9,7:F1} GFLOP/s ({100 * flops / (ms / 1000) / 1e9 / peak:F0} % of peak)" : ""));
int N = B * T, M = B * P, I = config.IntermediateSize;
using var x = randn(N, H, dtype: dt);
using var xi = randn(N, I, dtype: dt);
using var wq = randn(3 * H, H, dtype: dt);
using var wi = randn(I, H, dtype: dt);
using var wo = randn(H, I, dtype: dt);
using var hm = randn(M, H, dtype: dt);
using var emb = randn(V, H, dtype: dt);
using var g = randn(M, V, dtype: dt);
Report($"QKV projection [{N},{H}]x[{H},{3 * H}]", Time(() => x.matmul(wq.t())), 2.0 * N * H * 3 * H);
Report($"FFN in [{N},{H}]x[{H},{I}]", Time(() => x.matmul(wi.t())), 2.0 * N * H * I);
Report($"FFN out [{N},{I}]x[{I},{H}]", Time(() => xi.matmul(wo.t())), 2.0 * N * I * H);
Report($"FFN in, weight grad [{I},{N}]x[{N},{H}]", Time(() => xi.t().matmul(x)), 2.0 * N * H * I);
Report($"vocabulary projection [{M},{H}]x[{H},{V}]", Time(() => hm.matmul(emb.t())), 2.0 * M * H * V);
Report($"  its input grad [{M},{V}]x[{V},{H}]", Time(() => g.matmul(emb)), 2.0 * M * H * V);
Report($"  its weight grad [{V},{M}]x[{M},{H}]", Time(() => g.t().matmul(hm)), 2.0 * M * H * V);
using var logits = randn(M, V).requires_grad_();
Report($"cross-entropy over [{M},{V}] forward + backward (fp32)", Time(() =>
{
    var l = nn.functional.cross_entropy(logits, labels);
    l.backward();
    logits.grad!.zero_();
}), 0);
using var xf = randn(N, I);
Report($"GELU [{N},{I}] forward (fp32)", Time(() => nn.functional.gelu(xf)), 0);
using var ln = nn.LayerNorm(H);
using var xh = randn(N, H);
Report($"LayerNorm [{N},{H}] forward (fp32)", Time(() => ln.call(xh)), 0);
Report($"dropout 0.1 [{N},{I}] forward (fp32, libtorch)", Time(() => nn.functional.dropout(xf, 0.1, true)), 0);
Report($"dropout 0.1 [{N},{I}] forward (fp32, FastDropout)", Time(() => FastDropout.Apply(xf, 0.1, true)), 0);
Report($"add [{N},{I}] (fp32, memory bandwidth reference)", Time(() => xf.add(xf)), 0);
using var qa = randn(new long[] { B, config.NumAttentionHeads, T, H / config.NumAttentionHeads }, dtype: dt).requires_grad_();
using var ka = randn(new long[] { B, config.NumAttentionHeads, T, H / config.NumAttentionHeads }, dtype: dt).requires_grad_();
using var va = randn(new long[] { B, config.NumAttentionHeads, T, H / config.NumAttentionHeads }, dtype: dt).requires_grad_();
using var am = zeros(new long[] { B, 1, 1, T }, dtype: dt);
foreach (double pdrop in new[] { 0.0, 0.1 })
    Report($"scaled_dot_product_attention fwd+bwd, mask, dropout {pdrop}", Time(() =>
    {
        var c = nn.functional.scaled_dot_product_attention(qa, ka, va, am, pdrop);
        c.sum().backward();
    }), 0);
using var embM = nn.Embedding(V, H);
Report($"word embedding lookup fwd+bwd [{B},{T}] in [{V},{H}]", Time(() =>
{
    var e = embM.call(ids);
    e.sum().backward();
    embM.weight!.grad!.zero_();
}), 0);
Report($"dropout 0.1 as rand < p [{N},{I}] (fp32)", Time(() => xf.mul(rand_like(xf).ge_(0.1)).div_(0.9)), 0);
Report($"bernoulli_ mask [{N},{I}] (fp32)", Time(() => empty_like(xf).bernoulli_(0.9)), 0);
Report($"rand_like [{N},{I}] (fp32)", Time(() => rand_like(xf)), 0);
foreach (bool train in new[] { true, false })
{
    if (train) model.train(); else model.eval();
    Report($"encoder fwd+bwd, {(train ? "train (dropout on)" : "eval (dropout off)")}", Time(() =>
    {
        var e = model.Bert.Forward(ids, types, mask);
        (e.LastHiddenState.sum() + e.PoolerOutput!.sum()).backward();
    }, 3), 0);
}
// Before/after of the step's optimizations, each against the version without it, same shapes.
Console.WriteLine("ablations (each: without -> with)");
model.train();
double StepMs(int batch, bool allPositions, bool fusedLoss, BertForPreTraining? on = null, bool shard = true)
{
    var m = on ?? model;
    using var ids2 = ids.narrow(0, 0, batch);
    using var types2 = types.narrow(0, 0, batch);
    using var mask2 = mask.narrow(0, 0, batch);
    using var pos2 = positions.narrow(0, 0, batch * P);
    using var lab2 = labels.narrow(0, 0, batch * P);
    using var nsp2 = nsp.narrow(0, 0, batch);
    return Time(() =>
    {
        ZeroGrad(m);
        Tensor loss;
        if (fusedLoss) loss = ShardedPretrainingLoss.Compute(m, ids2, types2, mask2, pos2, lab2, nsp2, shard).Total;
        else if (!allPositions)
        {
            using var o = m.Forward(ids2, types2, mask2, pos2);
            loss = BertForPreTraining.Loss(o.MlmLogits, lab2, o.NspLogits!, nsp2).Total;
        }
        else
        {
            // The logits at every position [b, T, V], then the masked rows picked from them.
            using var o = m.Forward(ids2, types2, mask2);
            var picked = o.MlmLogits.reshape(-1, V).index_select(0, pos2);
            loss = BertForPreTraining.Loss(picked, lab2, o.NspLogits!, nsp2).Total;
        }
        loss.backward();
        Update(m);
    }, 3);
}
int small = Math.Min(B, 64);
double all = StepMs(small, true, false), masked = StepMs(small, false, false);
Console.WriteLine($"  MLM logits at every position -> only at the masked ones (batch {small}x{T}): {all:F1} -> {masked:F1} ms/step ({all / masked:F2}x)");
double textbook = StepMs(B, false, false), fusedMs = StepMs(B, false, true);
Console.WriteLine($"  textbook MLM loss -> fused chunked loss (batch {B}x{T}): {textbook:F1} -> {fusedMs:F1} ms/step ({textbook / fusedMs:F2}x)");
using var libtorchDropout = Twin(k => k with { Dropout = false });
double Encoder(bool explicitAttention) => Time(() =>
{
    var e = libtorchDropout.Bert.Forward(ids, types, mask, outputAttentions: explicitAttention);
    (e.LastHiddenState.sum() + e.PoolerOutput!.sum()).backward();
}, 3);
double EncoderInference(bool explicitAttention)
{
    using var _ = no_grad();
    return Time(() => libtorchDropout.Bert.Forward(ids, types, mask, outputAttentions: explicitAttention), 3);
}
for (int round = 0; round < 2; round++)   // twice, interleaved: the machine is noisy
{
    double libtorchMs = StepMs(B, false, true, libtorchDropout);
    double fastMs = StepMs(B, false, true);
    Console.WriteLine($"  libtorch dropout -> FastDropout (batch {B}x{T}, whole step): {libtorchMs:F1} -> {fastMs:F1} ms/step ({libtorchMs / fastMs:F2}x)");
}
SoftmaxAblation();
LayerNormAblation();
// The additive attention mask is skipped when nothing is padded: the same encoder with one padded key in the batch.
using var onePadded = mask.clone();
onePadded[0, T - 1] = tensor(0L);
for (int round = 0; round < 2; round++)
{
    double padded = Time(() =>
    {
        var e = model.Bert.Forward(ids, types, onePadded);
        (e.LastHiddenState.sum() + e.PoolerOutput!.sum()).backward();
    }, 3);
    double unpadded = Time(() =>
    {
        var e = model.Bert.Forward(ids, types, mask);
        (e.LastHiddenState.sum() + e.PoolerOutput!.sum()).backward();
    }, 3);
    Console.WriteLine($"  additive attention mask -> none when nothing is padded, encoder fwd+bwd, training: {padded:F1} -> {unpadded:F1} ms ({padded / unpadded:F2}x)");
}
for (int round = 0; round < 2; round++)
{
    libtorchDropout.train();   // with FastDropout, training always takes the explicit path on a CPU
    double explicitMs = Encoder(true), sdpaMs = Encoder(false);
    Console.WriteLine($"  explicit softmax attention -> scaled_dot_product_attention, encoder fwd+bwd, training (libtorch dropout 0.1): {explicitMs:F1} -> {sdpaMs:F1} ms ({explicitMs / sdpaMs:F2}x)");
    libtorchDropout.eval();
    explicitMs = EncoderInference(true); sdpaMs = EncoderInference(false);
    Console.WriteLine($"  explicit softmax attention -> scaled_dot_product_attention, encoder forward, inference: {explicitMs:F1} -> {sdpaMs:F1} ms ({explicitMs / sdpaMs:F2}x)");
}
model.train();
using var xq = randn(N, H, dtype: dt).requires_grad_();
using var w3 = randn(3 * H, H, dtype: dt).requires_grad_();
using var w1 = randn(H, H, dtype: dt).requires_grad_();
using var w2 = randn(H, H, dtype: dt).requires_grad_();
using var w4 = randn(H, H, dtype: dt).requires_grad_();
double threeMs = Time(() => (nn.functional.linear(xq, w1).sum() + nn.functional.linear(xq, w2).sum() + nn.functional.linear(xq, w4).sum()).backward());
double oneMs = Time(() => nn.functional.linear(xq, w3).sum().backward());
Console.WriteLine($"  three Q/K/V projections -> one fused [{H},{3 * H}] projection, fwd+bwd per layer: {threeMs:F1} -> {oneMs:F1} ms ({threeMs / oneMs:F2}x)");
return 0;

// The fused loss's softmax statistics by libtorch's ops (a pass per op) or by ColumnSoftmax (two passes), twice,
// interleaved.
void SoftmaxAblation()
{
    using var lossH = randn(B * P, H, dtype: precision).requires_grad_();
    using var lossW = randn(V, H).mul_(0.05).requires_grad_();
    using var lossB = zeros(V).requires_grad_();
    double LossMs(bool vectorised) => Time(() => FusedLinearCrossEntropy.Loss(lossH, lossW, lossB, labels, kernelOptions.MlmLossChunkRows, vectorisedSoftmax: vectorised).backward(), 3);
    using var byOps = Twin(k => k with { VectorisedSoftmax = false });
    for (int round = 0; round < 2; round++)
    {
        double opsLoss = LossMs(false), opsStep = StepMs(B, false, true, byOps);
        double kernelLoss = LossMs(true), kernelStep = StepMs(B, false, true);
        Console.WriteLine($"  fused loss softmax by libtorch ops -> ColumnSoftmax: loss fwd+bwd [{B * P}x{V}] {opsLoss:F1} -> {kernelLoss:F1} ms ({opsLoss / kernelLoss:F2}x), whole step {opsStep:F1} -> {kernelStep:F1} ms ({opsStep / kernelStep:F2}x)");
    }
}

// bf16 LayerNorm by casting around libtorch's fp32 LayerNorm or in one pass (Bf16LayerNorm): the encoder's forward
// and backward, alternated ten times; wall time and (meaningful with one thread: it leaves out the time the VM's
// CPU was taken away) process CPU time, medians.
void LayerNormAblation()
{
    if (precision != ScalarType.BFloat16) return;
    double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalMilliseconds;
    using var castModel = Twin(k => k with { Bf16LayerNorm = false });
    (double Wall, double Cpu) Encoder(BertForPreTraining m)
    {
        using var scope = NewDisposeScope();
        double c0 = Cpu();
        var t = Stopwatch.StartNew();
        var e = m.Bert.Forward(ids, types, mask);
        (e.LastHiddenState.sum() + e.PoolerOutput!.sum()).backward();
        return (t.Elapsed.TotalMilliseconds, Cpu() - c0);
    }
    var cast = new List<(double Wall, double Cpu)>(); var fused = new List<(double Wall, double Cpu)>();
    for (int round = 0; round < 12; round++)
    {
        var c = Encoder(castModel);
        var f = Encoder(model);
        if (round >= 2) { cast.Add(c); fused.Add(f); }   // two rounds of warm-up
    }
    double cw = Median(cast.Select(x => x.Wall)), fw = Median(fused.Select(x => x.Wall));
    double cc = Median(cast.Select(x => x.Cpu)), fc = Median(fused.Select(x => x.Cpu));
    Console.WriteLine($"  bf16 LayerNorm cast to fp32 and back -> Bf16LayerNorm, encoder fwd+bwd, medians of 10: wall {cw:F1} -> {fw:F1} ms ({cw / fw:F2}x), process CPU {cc:F1} -> {fc:F1} ms ({cc / fc:F2}x)");
}

// The C# kernels (ColumnSoftmax, Bf16LayerNorm, FastDropout, Bf16.AddTo) on the calling thread or split over the
// threads (KernelThreads): the whole step and the fused loss alone, alternated; medians of ten after two warm-ups.
void KernelThreadsAblation()
{
    using var lossH = randn(B * P, H, dtype: precision).requires_grad_();
    using var lossW = randn(V, H).mul_(0.05).requires_grad_();
    using var lossB = zeros(V).requires_grad_();
    double LossMs() => Time(() => FusedLinearCrossEntropy.Loss(lossH, lossW, lossB, labels, kernelOptions.MlmLossChunkRows).backward(), 1);
    var rows = new List<(double Step1, double Step2, double Loss1, double Loss2)>();
    for (int round = 0; round < 12; round++)
    {
        KernelThreads.ForcedParts = 1;   // this thread's kernels unsplit (inside a shard they run on one thread anyway)
        double s1 = StepMs(B, false, true), l1 = LossMs();
        KernelThreads.ForcedParts = null;
        double s2 = StepMs(B, false, true), l2 = LossMs();
        if (round >= 2) rows.Add((s1, s2, l1, l2));
    }
    double sOne = Median(rows.Select(r => r.Step1)), sSplit = Median(rows.Select(r => r.Step2));
    double lOne = Median(rows.Select(r => r.Loss1)), lSplit = Median(rows.Select(r => r.Loss2));
    Console.WriteLine($"  C# kernels on one thread -> split over {get_num_threads()} (libgomp spin {(OpenMpWorkersSpin())}), medians of 10: whole step {sOne:F1} -> {sSplit:F1} ms ({sOne / sSplit:F2}x), loss fwd+bwd {lOne:F1} -> {lSplit:F1} ms ({lOne / lSplit:F2}x)");
    Console.WriteLine($"    rounds (step one -> split): {string.Join(", ", rows.Select(r => $"{r.Step1:F0}->{r.Step2:F0}"))}");
}

// The whole step with libtorch's threads splitting each op, then with the batch cut into one shard per thread
// (DataParallel), alternating; medians of rounds 3-12.
void DataParallelAblation()
{
    var rows = Alternate(on => StepMs(B, false, true, shard: on));
    double o = Median(rows.Select(r => r.Off)), d = Median(rows.Select(r => r.On));
    Console.WriteLine($"  each op over {get_num_threads()} threads -> {get_num_threads()} shards of the batch, one thread each, medians of 10: whole step {o:F1} -> {d:F1} ms ({o / d:F2}x), {B * 1000 / o:F0} -> {B * 1000 / d:F0} seq/s; shards won {rows.Count(r => r.On < r.Off)} of {rows.Count}");
    Console.WriteLine($"    rounds (ops -> shards): {Rounds(rows)}");
}

// The whole step with zero_grad, clip_grad_norm_ and TorchSharp's AdamW step, then with the gradients dropped and
// FusedAdamW (clipping folded in), alternating; medians of rounds 3-12; and the optimizer's part alone (gradient
// norm, clipping and update, on the gradients of one step).
void OptimizerAblation()
{
    var rows = Alternate(on => { fusedOptimizer = on; return StepMs(B, false, true); });
    double o = Median(rows.Select(r => r.Off)), f = Median(rows.Select(r => r.On));
    Console.WriteLine($"  zero_grad + clip_grad_norm_ + AdamW.step -> dropped gradients + FusedAdamW, medians of 10: whole step {o:F1} -> {f:F1} ms ({o / f:F2}x), {B * 1000 / o:F0} -> {B * 1000 / f:F0} seq/s; fused won {rows.Count(r => r.On < r.Off)} of {rows.Count}");
    Console.WriteLine($"    rounds (libtorch -> fused): {Rounds(rows)}");
    var pieces = Alternate(on =>
    {
        fusedOptimizer = on;
        var t = Stopwatch.StartNew();
        Update();
        return t.Elapsed.TotalMilliseconds;
    });
    Console.WriteLine($"  the update alone (norm, clipping, AdamW; {parameters.Sum(p => p.numel()):N0} parameters), medians of 10: {Median(pieces.Select(r => r.Off)):F1} -> {Median(pieces.Select(r => r.On)):F1} ms");
}

// The training attention's softmax, dropout and cast as libtorch ops or in one pass (AttentionSoftmaxDropout): the
// whole step, alternating; medians of rounds 3-12.
void AttentionAblation()
{
    // In fp32 too (off there by default): measured here.
    using var fused = Twin(k => k with { AttentionSoftmaxDropoutFloat32 = true });
    using var ops = Twin(k => k with { AttentionSoftmaxDropout = false });
    var rows = Alternate(on => StepMs(B, false, true, on ? fused : ops));
    // The piece alone, per layer: [B, N, L, L] scores to the dropped-out probabilities in the values' dtype and back.
    using var scores = randn(new long[] { B, config.NumAttentionHeads, T, T }, dtype: precision).requires_grad_();
    using var upstream = randn(new long[] { B, config.NumAttentionHeads, T, T }, dtype: precision);
    double PieceMs(bool fused) => Time(() =>
    {
        var y = fused ? AttentionSoftmaxDropout.Apply(scores, config.AttentionProbsDropoutProb, precision)
            : FastDropout.Apply(nn.functional.softmax(scores, -1, ScalarType.Float32), config.AttentionProbsDropoutProb, true).to(precision);
        torch.autograd.backward(new List<Tensor> { y }, new List<Tensor> { upstream });
        scores.grad!.Dispose();
        scores.grad = null;
    }, 3);
    var pieces = Alternate(PieceMs);
    double o = Median(rows.Select(r => r.Off)), f = Median(rows.Select(r => r.On));
    double po = Median(pieces.Select(r => r.Off)), pf = Median(pieces.Select(r => r.On));
    Console.WriteLine($"  the piece alone, fwd+bwd of [{B}, {config.NumAttentionHeads}, {T}, {T}] (one layer), medians of 10: {po:F1} -> {pf:F1} ms ({po / pf:F2}x), x{config.NumHiddenLayers} layers = {(po - pf) * config.NumHiddenLayers:F1} ms less per step");
    Console.WriteLine($"  attention softmax + dropout + cast as libtorch ops -> AttentionSoftmaxDropout, medians of 10: whole step {o:F1} -> {f:F1} ms ({o / f:F2}x), {B * 1000 / o:F0} -> {B * 1000 / f:F0} seq/s; fused won {rows.Count(r => r.On < r.Off)} of {rows.Count}");
    Console.WriteLine($"    rounds (ops -> fused): {Rounds(rows)}");
}

// LayerNorm(dropout(h) + residual) as FastDropout, an add and LayerNorm, or in one pass (DropoutAddLayerNorm): the
// piece alone at one block's shape, then the whole step, alternating; medians of rounds 3-12.
void ResidualAblation()
{
    // In fp32 too (off there by default): measured here.
    using var fusedModel = Twin(k => k with { DropoutAddLayerNormFloat32 = true });
    using var opsModel = Twin(k => k with { DropoutAddLayerNorm = false });
    var norm = nn.LayerNorm(H, eps: config.LayerNormEps);
    using var h = randn(new long[] { B * T, H }, dtype: precision).requires_grad_();
    using var residual = randn(new long[] { B * T, H }, dtype: precision).requires_grad_();
    using var upstream = randn(new long[] { B * T, H }, dtype: precision);
    double p = config.HiddenDropoutProb;
    double PieceMs(bool fused) => Time(() =>
    {
        Tensor y;
        if (fused) y = DropoutAddLayerNorm.Apply(h, residual, norm.weight!, norm.bias!, p, config.LayerNormEps);
        else
        {
            var sum = FastDropout.Apply(h, p, true) + residual;
            y = precision == ScalarType.BFloat16 ? Bf16LayerNorm.apply(sum, norm.weight!, norm.bias!, config.LayerNormEps) : norm.call(sum);
        }
        torch.autograd.backward(new List<Tensor> { y }, new List<Tensor> { upstream });
        foreach (var t in new[] { h, residual, norm.weight!, norm.bias! }) { t.grad!.Dispose(); t.grad = null; }
    }, 3);
    var pieces = Alternate(PieceMs);
    double po = Median(pieces.Select(r => r.Off)), pf = Median(pieces.Select(r => r.On));
    int blocks = 2 * config.NumHiddenLayers;
    Console.WriteLine($"  the piece alone, fwd+bwd of [{B * T}, {H}] (one block), medians of 10: {po:F1} -> {pf:F1} ms ({po / pf:F2}x), x{blocks} blocks = {(po - pf) * blocks:F1} ms less per step");
    var rows = Alternate(on => StepMs(B, false, true, on ? fusedModel : opsModel));
    double o = Median(rows.Select(r => r.Off)), f = Median(rows.Select(r => r.On));
    Console.WriteLine($"  dropout + add + LayerNorm as separate ops -> DropoutAddLayerNorm, medians of 10: whole step {o:F1} -> {f:F1} ms ({o / f:F2}x), {B * 1000 / o:F0} -> {B * 1000 / f:F0} seq/s; fused won {rows.Count(r => r.On < r.Off)} of {rows.Count}");
    Console.WriteLine($"    rounds (ops -> fused): {Rounds(rows)}");
}

// measure(false) and measure(true), alternated for 12 rounds; the last 10 (two rounds of warm-up), measure(true) left last.
static List<(double Off, double On)> Alternate(Func<bool, double> measure)
{
    var rows = new List<(double Off, double On)>();
    for (int round = 0; round < 12; round++)
    {
        double off = measure(false), on = measure(true);
        if (round >= 2) rows.Add((off, on));
    }
    return rows;
}

static string Rounds(List<(double Off, double On)> rows) => string.Join(", ", rows.Select(r => $"{r.Off:F0}->{r.On:F0}"));

static double Median(IEnumerable<double> v) { var s = v.OrderBy(x => x).ToList(); return (s[s.Count / 2] + s[(s.Count - 1) / 2]) / 2; }

static string OpenMpWorkersSpin() => Environment.GetEnvironmentVariable("GOMP_SPINCOUNT") ?? "10000, BertSharp's";
