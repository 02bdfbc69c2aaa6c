using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Raw access to a CPU tensor's elements for the vectorised kernels (<see cref="ColumnSoftmax"/>,
/// <see cref="Bf16LayerNorm"/>).</summary>
internal static class NativeTensor
{
    /// <summary>The address of the tensor's first element (its storage offset applied); valid while the tensor lives.
    /// The caller checks dtype, device and contiguity.</summary>
    public static unsafe T* Data<T>(Tensor t) where T : unmanaged =>
        (T*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
}
