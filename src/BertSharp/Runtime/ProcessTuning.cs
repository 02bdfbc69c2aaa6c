using TorchSharp;

namespace BertSharp.Runtime;

/// <summary>What <see cref="ProcessTuning.Apply"/> may change in the process; each part can be left out.</summary>
public sealed record ProcessTuningOptions
{
    /// <summary>libgomp's workers spin briefly after each libtorch op (GOMP_SPINCOUNT), so BertSharp's CPU kernels can
    /// split their rows over the cores. Takes effect only before libtorch is loaded.</summary>
    public bool OpenMpSpin { get; init; } = true;

    /// <summary>MKL takes the code path the processor's features allow on non-Intel x64 processors (Linux).</summary>
    public bool MklFeatureDispatch { get; init; } = true;

    /// <summary>Training runs use the training heap policy: glibc keeps freed memory, a collection after each step,
    /// memory given back after each evaluation (Linux with glibc).</summary>
    public bool TrainingHeap { get; init; } = true;
}

/// <summary>What the tuning did, part by part, in words.</summary>
public sealed record ProcessTuningReport(string OpenMp, string Mkl, string TrainingHeap)
{
    public override string ToString() => $"{OpenMp}; {Mkl}; {TrainingHeap}";
}

/// <summary>
/// The process-wide settings BertSharp runs fastest with on the CPU, applied only when asked: referencing BertSharp,
/// loading a model or predicting changes nothing in the host process (its environment, MKL, glibc's heap, the GC).
/// The `bert` command calls <see cref="Apply"/> first thing; a C# program that trains or benchmarks can do the same,
/// as the first BertSharp or TorchSharp call of its process (libgomp reads its spin setting when libtorch loads, and
/// MKL keeps the code path of its first product).
/// </summary>
public static class ProcessTuning
{
    static readonly object Gate = new();
    static ProcessTuningReport? applied;
    static bool trainingHeap;

    /// <summary>What <see cref="Apply"/> did, or null when it was not called.</summary>
    public static ProcessTuningReport? Applied { get { lock (Gate) return applied; } }

    /// <summary>Whether training runs use <see cref="NativeHeap"/>'s policy.</summary>
    internal static bool TrainingHeap { get { lock (Gate) return trainingHeap; } }

    /// <summary>Applies the tuning once per process (a later call returns the first call's report and changes
    /// nothing). Never throws for a platform where a part does not apply: the report says so.</summary>
    public static ProcessTuningReport Apply(ProcessTuningOptions? options = null)
    {
        options ??= new ProcessTuningOptions();
        lock (Gate)
        {
            if (applied != null) return applied;
            string openMp = options.OpenMpSpin ? OpenMpWorkers.ShortenSpin() : "OpenMP spin as is (not asked)";
            torch.InitializeDeviceType(DeviceType.CPU);   // loads libtorch, and with it libgomp and MKL
            string mkl = options.MklFeatureDispatch ? Mkl.UseFeatureDispatch() : "MKL as shipped (not asked)";
            trainingHeap = options.TrainingHeap;
            string heap = !options.TrainingHeap ? "training heap as is (not asked)"
                : NativeHeap.GlibcPolicyAvailable ? "training heap policy on (glibc keeps freed memory; a collection after each step)"
                : "training heap: a collection after each step (glibc's policy not available here or BERTSHARP_GLIBC_HEAP=default)";
            return applied = new ProcessTuningReport(openMp, mkl, heap);
        }
    }
}
