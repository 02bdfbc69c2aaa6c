namespace BertSharp.Training;

/// <summary>Linear warmup from 0 to the peak learning rate, then linear decay to 0 at the last step
/// (BERT's schedule, HF's get_linear_schedule_with_warmup). A pure function of the step, so resuming needs
/// no scheduler state beyond the step.</summary>
public sealed record LinearSchedule(double PeakLearningRate, long WarmupSteps, long TotalSteps)
{
    public double At(long step)
    {
        if (step < WarmupSteps) return PeakLearningRate * step / Math.Max(1, WarmupSteps);
        return PeakLearningRate * Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
    }
}
