using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp;

/// <summary>Devices by name, libtorch's thread count and its random seed (the command line's device, threads and seed). Devices
/// are chosen when a model is built (<see cref="Checkpoints.ModelFolder.NewModel"/>); nothing here is read by a model.</summary>
public static class TorchRuntime
{
    public static Device ParseDevice(string spec)
    {
        try
        {
            var d = torch.device(spec);
            if (d.type == DeviceType.CUDA && !cuda.is_available())
                throw new BertSharpException($"device {spec}: CUDA is not available in this build or on this machine (build with -p:TorchBackend=cuda on a machine with a GPU)") { Parameters = ["device"] };
            return d;
        }
        catch (BertSharpException) { throw; }
        catch (Exception) { throw new BertSharpException($"device {spec}: unknown (use cpu, cuda or cuda:N)") { Parameters = ["device"] }; }
    }

    /// <summary>Checks <paramref name="device"/> names a device here, sets libtorch's thread count and seeds its generators.</summary>
    public static void Configure(string? device = null, int? threads = null, long? seed = null)
    {
        if (device != null) ParseDevice(device);
        if (threads is int t)
        {
            if (t < 1) throw new BertSharpException($"threads must be at least 1, got {t}") { Parameters = ["threads"] };
            torch.set_num_threads(t);
        }
        if (seed is long s) Seed(s);
    }

    public static void Seed(long seed)
    {
        torch.manual_seed(seed);
        if (cuda.is_available()) cuda.manual_seed_all(seed);
    }
}
