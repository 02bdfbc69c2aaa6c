namespace BertSharp.Tests.Cli;

/// <summary>Runs the `bert` command line in this process, its standard output and error captured.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = BertSharp.Cli.Cli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }
}
