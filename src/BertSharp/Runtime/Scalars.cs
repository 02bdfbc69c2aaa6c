using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Runtime;

/// <summary>
/// Numbers handed to libtorch so that they live until libtorch has read them. TorchSharp frees a <see cref="Scalar"/>'s
/// native value in its finalizer, and its methods read a Scalar argument's handle and then call libtorch without keeping
/// the Scalar alive. A Scalar made implicitly from a number (<c>t.mul(0.5)</c>, <c>t.ne(-100)</c>, <c>t / 2</c>) or inside
/// TorchSharp (the alpha of 1 that <c>a.add(b)</c> and <c>a + b</c> pass) is garbage once the call has begun: a
/// collection another thread triggers meanwhile (the batch prefetcher, a data-parallel shard, a server's other requests)
/// lets the finalizer thread free the value while libtorch reads it. libtorch then stops with "Expected false to be
/// true, but got false" from c10::Scalar's conversion (the README's pre-training job exited with code 2 that way), or
/// reads a wrong number. So BertSharp passes numbers to tensor operations only through these: <see cref="With(Tensor,
/// double, Func{Tensor, Scalar, Tensor})"/> holds the Scalar until the operation has returned and then frees it, and
/// <see cref="One"/> lives as long as the process.
/// </summary>
internal static class Scalars
{
    /// <summary>The alpha of a sum of two tensors (never collected: a static field holds it).</summary>
    public static readonly Scalar One = 1.ToScalar();

    static readonly Scalar Zero = 0.ToScalar();

    /// <summary>0, 1, …, <paramref name="stop"/> − 1 (TorchSharp's arange(stop) makes its start, stop and step Scalars
    /// implicitly).</summary>
    public static Tensor Range(long stop, Device device, ScalarType dtype = ScalarType.Int64)
    {
        using var end = stop.ToScalar();
        return arange(Zero, end, One, dtype, device);
    }

    /// <summary>a + b.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    /// <summary>a += b.</summary>
    public static Tensor PlusInPlace(this Tensor a, Tensor b) => a.add_(b, One);

    /// <summary><paramref name="operation"/>(t, the Scalar of a floating-point <paramref name="value"/>), the Scalar
    /// freed after it returns.</summary>
    public static Tensor With(this Tensor t, double value, Func<Tensor, Scalar, Tensor> operation)
    {
        using var scalar = value.ToScalar();
        return operation(t, scalar);
    }

    /// <summary><paramref name="operation"/>(t, the Scalar of an integer <paramref name="value"/>), the Scalar freed after
    /// it returns (integer tensors keep their dtype).</summary>
    public static Tensor With(this Tensor t, long value, Func<Tensor, Scalar, Tensor> operation)
    {
        using var scalar = value.ToScalar();
        return operation(t, scalar);
    }
}
