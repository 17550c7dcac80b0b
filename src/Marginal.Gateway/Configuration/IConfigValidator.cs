namespace Marginal.Gateway.Configuration;

/// <summary>
/// The checks of one section of marginal.yaml (after YARP's one validator per config kind); <see cref="ConfigLoader"/>
/// runs them all in a fixed order. A validator reads the whole <see cref="MarginalConfig"/> because sections name each
/// other (models name providers, routes name models). Every failure is a <see cref="ConfigException"/> whose message is
/// one line: file, key, what is allowed.
/// </summary>
internal interface IConfigValidator
{
    void Validate(MarginalConfig config, string file);
}
