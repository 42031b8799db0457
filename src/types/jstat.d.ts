/**
 * The few jStat distribution functions omnimeter uses (jstat ships no types). jStat is a CommonJS module
 * whose export is the jStat object itself.
 */
declare module "jstat" {
  interface Distribution {
    /** P(X <= x). */
    cdf(x: number, ...parameters: number[]): number
    /** The x with P(X <= x) = p. */
    inv(p: number, ...parameters: number[]): number
  }
  interface JStat {
    /** Parameters: mean, standard deviation. */
    normal: Distribution
    /** Parameter: degrees of freedom. */
    studentt: Distribution
    /** Parameter: degrees of freedom. */
    chisquare: Pick<Distribution, "cdf">
  }
  const jStat: JStat
  export = jStat
}
