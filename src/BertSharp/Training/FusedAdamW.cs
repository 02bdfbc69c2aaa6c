using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BertSharp.Modeling;
using BertSharp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>
/// TorchSharp's AdamW update in one vectorised pass over each parameter on the CPU, with the gradient clipping's
/// scale folded in. The optimizer object keeps its state, options and checkpoint format; only the arithmetic moves.
/// </summary>
/// <remarks>
/// TorchSharp's step is nine libtorch ops per parameter (decay, two moving averages, square root, divide, add ε,
/// addcdiv), ~22 passes over parameter-sized memory plus two temporaries; clip_grad_norm_ adds a read and a scaling
/// pass. Here each element is read once from the parameter, gradient and both moments and written once to the three
/// it updates. BERT-base holds 110 M parameters: each pass is 440 MB, and the update took ~0.4 s of a ~4 s
/// fine-tuning step on 2 threads (docs/PERFORMANCE.md). Same formula and order as TorchSharp's AdamW (and PyTorch's):
/// p ← p·(1 − lr·wd); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²; p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε).
/// Elsewhere (another device or dtype, amsgrad, maximize) the gradients are scaled and TorchSharp's step runs.
/// </remarks>
internal static class FusedAdamW
{
    /// <summary>Before a step's first backward: the gradients dropped (PyTorch's zero_grad(set_to_none=True)), so that
    /// backward stores each parameter's first gradient as it comes instead of adding it into zeros (a fill and an add
    /// pass over parameter-sized memory saved).</summary>
    public static void ClearGradients(IEnumerable<Tensor> parameters)
    {
        foreach (var p in parameters) p.grad = null;
    }

    /// <summary>The L2 norm of all the gradients together, as clip_grad_norm_ reports it (parameters without a
    /// gradient left out).</summary>
    public static double GradientNorm(IEnumerable<Tensor> parameters)
    {
        using var scope = NewDisposeScope();
        var norms = parameters.Select(p => p.grad).Where(g => g is not null).Select(g => g!.norm()).ToArray();   // not linalg.vector_norm: it makes a Scalar of its order that nothing holds (Scalars)
        return norms.Length == 0 ? 0 : stack(norms).norm().item<float>();
    }

    /// <summary>The factor clip_grad_norm_ scales the gradients by for <paramref name="maxNorm"/>: at most 1.</summary>
    public static double ClipScale(double gradNorm, double maxNorm) => Math.Min(1.0, maxNorm / (gradNorm + 1e-6));

    /// <summary>One AdamW update of every parameter with a gradient, each gradient multiplied by
    /// <paramref name="gradientScale"/> first (the clipping), with the learning rates now in the optimizer's groups.</summary>
    /// <param name="fused">false: TorchSharp's own step after scaling the gradients (bench/StepProfile's before/after)</param>
    public static void Step(AdamW optimizer, double gradientScale = 1.0, bool fused = true)
    {
        var groups = optimizer.ParamGroups.Cast<AdamW.ParamGroup>().ToList();
        var states = optimizer.state_dict().State;   // the live state objects, group by group in parameter order
        if (!fused || !groups.All(Fusable))
        {
            if (gradientScale != 1.0)
                using (no_grad())
                    foreach (var p in groups.SelectMany(g => g.Parameters))
                        using (var grad = p.grad) grad?.With(gradientScale, (t, s) => t.mul_(s));
            optimizer.step();
            return;
        }
        using var _ = no_grad();
        int index = 0;
        foreach (var group in groups)
        {
            var o = group.Options;
            double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value;
            foreach (var p in group.Parameters)
            {
                var state = (AdamW.State)states[index++];
                using var grad = p.grad;
                if (grad is null) continue;   // as TorchSharp: no update, no step counted
                state.step += 1;
                double bc1 = 1 - Math.Pow(beta1, state.step), bc2 = 1 - Math.Pow(beta2, state.step);
                var k = new Coefficients((float)gradientScale, (float)(1 - lr * o.weight_decay!.Value), (float)beta1, (float)(1 - beta1),
                    (float)beta2, (float)(1 - beta2), (float)Math.Sqrt(bc2), (float)o.eps!.Value, (float)(-lr / bc1));
                Update(p, grad, state.exp_avg, state.exp_avg_sq, k);
            }
        }
    }

    private static bool Fusable(AdamW.ParamGroup g) =>
        g.Options.amsgrad != true && g.Options.maximize != true && g.Parameters.All(p =>
        {
            using var grad = p.grad;
            return p.device_type == DeviceType.CPU && p.dtype == ScalarType.Float32 && p.is_contiguous()
                && (grad is null || grad.dtype == ScalarType.Float32 && grad.is_contiguous() && grad.shape.SequenceEqual(p.shape));
        });

    private readonly record struct Coefficients(float Scale, float Decay, float Beta1, float OneMinusBeta1, float Beta2,
        float OneMinusBeta2, float SqrtBiasCorrection2, float Eps, float NegStepSize);

    private static unsafe void Update(Tensor param, Tensor grad, Tensor expAvg, Tensor expAvgSq, Coefficients k)
    {
        const int Lanes = 16;
        long n = param.numel();
        nint p = (nint)NativeTensor.Data<float>(param), g = (nint)NativeTensor.Data<float>(grad);
        nint m = (nint)NativeTensor.Data<float>(expAvg), v = (nint)NativeTensor.Data<float>(expAvgSq);
        int parts = KernelThreads.Parts(n, 1);
        KernelThreads.Run(parts, part =>
        {
            var (i0, i1) = KernelThreads.Range(n, parts, part, Lanes);
            UpdateRange((float*)p, (float*)g, (float*)m, (float*)v, i0, i1, k);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]   // hot loop: compiled optimised at once
    private static unsafe void UpdateRange(float* p, float* g, float* m, float* v, long i0, long i1, Coefficients k)
    {
        const int Lanes = 16;
        var scale = Vector512.Create(k.Scale);
        var decay = Vector512.Create(k.Decay);
        var b1 = Vector512.Create(k.Beta1);
        var c1 = Vector512.Create(k.OneMinusBeta1);
        var b2 = Vector512.Create(k.Beta2);
        var c2 = Vector512.Create(k.OneMinusBeta2);
        var sqrtBc2 = Vector512.Create(k.SqrtBiasCorrection2);
        var eps = Vector512.Create(k.Eps);
        var step = Vector512.Create(k.NegStepSize);
        long i = i0;
        for (; i + Lanes <= i1; i += Lanes)
        {
            var gi = Vector512.Load(g + i) * scale;
            var mi = Vector512.Load(m + i) * b1 + gi * c1;
            var vi = Vector512.Load(v + i) * b2 + c2 * gi * gi;
            var denom = Vector512.Sqrt(vi) / sqrtBc2 + eps;
            var pi = Vector512.Load(p + i) * decay + step * mi / denom;
            mi.Store(m + i);
            vi.Store(v + i);
            pi.Store(p + i);
        }
        for (; i < i1; i++)
        {
            float gi = g[i] * k.Scale;
            float mi = m[i] = m[i] * k.Beta1 + gi * k.OneMinusBeta1;
            float vi = v[i] = v[i] * k.Beta2 + k.OneMinusBeta2 * gi * gi;
            p[i] = p[i] * k.Decay + k.NegStepSize * mi / (MathF.Sqrt(vi) / k.SqrtBiasCorrection2 + k.Eps);
        }
    }
}
