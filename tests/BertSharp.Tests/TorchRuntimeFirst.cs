using System.Runtime.CompilerServices;

namespace BertSharp.Tests;

static class TorchRuntimeFirst
{
    /// <summary>The test process starts as the `bert` command and every model does: <see cref="TorchRuntime"/> before
    /// any product, so MKL's code path is the one users get (<see cref="Mkl.UseFeatureDispatch"/>) whatever test runs first.</summary>
    [ModuleInitializer]
    internal static void Initialize() => RuntimeHelpers.RunClassConstructor(typeof(TorchRuntime).TypeHandle);
}
