using TorchSharp;
var a = torch.randn(64, 64);
Console.WriteLine(a.matmul(a).sum().item<float>());
